import { randomUUID } from "node:crypto";
import type { ObjectStore } from "../objects/index.js";
import { registerBodyCases } from "./object-store-contract-bodies.js";
import { registerConditionalCases } from "./object-store-contract-conditional.js";
import { registerListCases } from "./object-store-contract-list.js";
import { registerMultipartCases } from "./object-store-contract-multipart.js";
import { registerObjectCases } from "./object-store-contract-objects.js";

/** Test groups of {@link runObjectStoreContract}. */
export type ObjectStoreContractGroup = "objects" | "bodies" | "list" | "conditional" | "multipart";

/** The test-runner functions the contract registers its cases with (vitest, node:test, mocha...). */
export interface ObjectStoreContractRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
}

/** Options of {@link runObjectStoreContract}. */
export interface ObjectStoreContractOptions extends ObjectStoreContractRunner {
  /** Which groups to register. Default all five. */
  groups?: readonly ObjectStoreContractGroup[];
  /** Name of the enclosing `describe`. Default `"ObjectStore contract"`. */
  name?: string;
}

/**
 * Registers the ObjectStore contract: get/put/head/delete/list (prefix boundaries, pagination),
 * body kinds and streaming, bodies that fail or differ from their contentLength, key validation, conditional puts and multipart completions (including races), and
 * ten core multipart cases plus a few more. `openFresh` is called once per case; every case works
 * under its own random prefix, so stores may share a bucket or root. Each case closes its store.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * runObjectStoreContract(() => new MemoryObjectStore(), { describe, it });
 * ```
 */
export function runObjectStoreContract(
  openFresh: () => ObjectStore | Promise<ObjectStore>,
  options: ObjectStoreContractOptions,
): void {
  const { describe, it } = options;
  const groups = new Set(options.groups ?? ["objects", "bodies", "list", "conditional", "multipart"]);
  const test = (name: string, fn: (store: ObjectStore, prefix: string) => Promise<void>) =>
    it(name, async () => {
      const store = await openFresh();
      try {
        await fn(store, `contract-${randomUUID()}/`);
      } finally {
        await store.close();
      }
    });

  describe(options.name ?? "ObjectStore contract", () => {
    if (groups.has("objects")) describe("objects", () => registerObjectCases(test));
    if (groups.has("bodies")) describe("bodies", () => registerBodyCases(test));
    if (groups.has("list")) describe("list", () => registerListCases(test));
    if (groups.has("conditional")) describe("conditional put", () => registerConditionalCases(test));
    if (groups.has("multipart")) describe("multipart", () => registerMultipartCases(test));
  });
}
