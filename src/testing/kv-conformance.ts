import { InvalidArgumentError } from "../errors.js";
import type { Store } from "../kv/index.js";
import { basicCases } from "./kv-conformance-basic.js";
import { concurrencyCases } from "./kv-conformance-concurrency.js";
import type { StoreCase } from "./kv-conformance-helpers.js";
import { migrationCases } from "./kv-conformance-migrations.js";
import { scanCases } from "./kv-conformance-scan.js";

/** Options of {@link runStoreConformance}. */
export interface StoreConformanceOptions {
  /** The runner's `describe` (vitest or `node:test`). Default: a global `describe`. */
  describe?: (name: string, fn: () => void) => unknown;
  /**
   * The runner's `it`, called as `it(name, fn)`; wrap it to pass a timeout, e.g.
   * `(name, fn) => it(name, fn, 30_000)` on vitest. Default: a global `it`.
   */
  it?: (name: string, fn: () => Promise<void>) => unknown;
  /** Title of the enclosing `describe`. Default `"kv store conformance"`. */
  name?: string;
  /** Size of the lost-update case: `workers` concurrent callers each incrementing one counter `increments` times. Default 8 x 100. */
  lostUpdate?: { workers: number; increments: number };
}

/** Every case, in order; exported so a harness can assert that none is silently dropped. */
export const storeConformanceCases: readonly StoreCase[] = [
  ...basicCases,
  ...scanCases,
  ...migrationCases,
  ...concurrencyCases,
];

/**
 * Registers the kv driver conformance suite: 18 core cases plus range scans, Unicode and
 * NUL keys, a 1 MiB value, lost-update freedom, migration reorder/removal detection and more.
 * `openFresh` must resolve to a new, empty store each call; every case closes its store. The
 * cases assert with `node:assert`, so any runner with `describe`/`it` works.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * runStoreConformance(() => openStore("memory", ""), { describe, it });
 * // node:test
 * import { describe, it } from "node:test";
 * runStoreConformance(() => openMyStore(), { describe, it: (name, fn) => it(name, fn) });
 * ```
 */
export function runStoreConformance(openFresh: () => Promise<Store>, options: StoreConformanceOptions = {}): void {
  const globals = globalThis as Partial<Pick<StoreConformanceOptions, "describe" | "it">>;
  const describe = options.describe ?? globals.describe;
  const it = options.it ?? globals.it;
  if (typeof describe !== "function" || typeof it !== "function") {
    throw new InvalidArgumentError("runStoreConformance needs describe and it (pass them in options)");
  }
  describe(options.name ?? "kv store conformance", () => {
    for (const c of storeConformanceCases) {
      it(c.name, async () => {
        const store = await openFresh();
        try {
          await c.run(store, options);
        } finally {
          await store.close();
        }
      });
    }
  });
}
