import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { afterEach } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { MemoryObjectStore } from "../../src/objects/index.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { TenantStore, type TenantStoreOptions } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";

/** Fresh stores per test on a real cache directory, closed after each test. */
export function useTenantStores(): {
  clock: ManualClock;
  open(options?: Partial<TenantStoreOptions>): Promise<TenantStore>;
  objects(): MemoryObjectStore;
  newCacheRoot(): string;
  failures: { key: string; error: unknown }[];
} {
  const root = useTempDir("storeroom-tenants-");
  const clock = new ManualClock(1_700_000_000_000);
  const open: TenantStore[] = [];
  const failures: { key: string; error: unknown }[] = [];
  let shared: MemoryObjectStore | undefined;
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
    shared = undefined;
    failures.length = 0;
  });
  const objects = (): MemoryObjectStore => {
    shared ??= new MemoryObjectStore();
    return shared;
  };
  const newCacheRoot = (): string => mkdtempSync(join(root, "cache-"));
  return {
    clock,
    objects,
    newCacheRoot,
    failures,
    async open(options = {}) {
      const store = await TenantStore.open({
        objectStore: (options.objectStore as ObjectStore | undefined) ?? objects(),
        cacheRoot: newCacheRoot(),
        clock,
        idleTtlMs: 0,
        onError: (error, key) => failures.push({ key: String(key), error }),
        ...options,
      });
      open.push(store);
      return store;
    },
  };
}

/** Reads an object fully. */
export async function objectBytes(store: ObjectStore, key: string): Promise<Buffer | null> {
  const obj = await store.get(key);
  if (obj === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of obj.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Keys of every object under `prefix`. */
export async function objectKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, cursor === undefined ? {} : { cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}
