import type { Store } from "../kv/index.js";

/** One benchmark case, shaped for `bench/harness.ts` (`runSuite`) and similar runners. */
export interface StoreBenchCase {
  /** Shown in the table, e.g. `"storeroom kv sqlite"`. */
  readonly name: string;
  /** The operation: `"kv Put"`, `"kv Get"`, `"kv Update"`, `"kv View"`, `"kv Scan100"`, prefixed by `groupPrefix`. */
  readonly group: string;
  readonly role: "ours";
  /** Runs `batch` operations, each in its own transaction. */
  readonly fn: () => Promise<void>;
  readonly batch: number;
}

/** Options of {@link runStoreBenchmarks}. */
export interface StoreBenchmarkOptions {
  /** Case name, e.g. the driver. Default `"store"`. */
  name?: string;
  /** Prepended to every group, so drivers can be kept apart or compared. Default `""`. */
  groupPrefix?: string;
  /** Operations per measured call. Default 100. */
  batch?: number;
  /** Keys preloaded for Put/Get. Default 1000. */
  keys?: number;
}

/** What {@link runStoreBenchmarks} prepared: the cases and a way to close the store afterwards. */
export interface StoreBenchmarks {
  readonly cases: StoreBenchCase[];
  /** The opened store, for extra cases on the same data. */
  readonly store: Store;
  close(): Promise<void>;
}

/** The key of the i-th preloaded entry, so raw comparisons can use the same data. */
export function kvBenchKey(i: number): string {
  return `key:${String(i).padStart(6, "0")}`;
}

/** The 100-byte value every preloaded entry carries. */
export const kvBenchValue: Uint8Array = new Uint8Array(100).fill(0x61);

/**
 * Opens a store, preloads `keys` entries in namespace `"bench"` and 100 in `"scan"`, and
 * returns the benchmark cases: Put (one `update` per put), Get (one `view` per get),
 * Update and View (empty transactions) and Scan100 (one `view` scanning 100 entries).
 *
 * @example
 * ```ts
 * const bench = await runStoreBenchmarks(() => openStore("sqlite", ":memory:"), { name: "sqlite" });
 * await runSuite("kv", bench.cases);
 * await bench.close();
 * ```
 */
export async function runStoreBenchmarks(
  openFresh: () => Promise<Store>,
  options: StoreBenchmarkOptions = {},
): Promise<StoreBenchmarks> {
  const name = options.name ?? "store";
  const prefix = options.groupPrefix ?? "";
  const batch = options.batch ?? 100;
  const keyCount = options.keys ?? 1000;
  const store = await openFresh();
  await store.update(async (tx) => {
    for (let i = 0; i < keyCount; i++) await tx.put("bench", kvBenchKey(i), kvBenchValue);
    for (let i = 0; i < 100; i++) await tx.put("scan", kvBenchKey(i), kvBenchValue);
  });
  const keys = Array.from({ length: keyCount }, (_, i) => kvBenchKey(i));
  let next = 0;
  const key = (): string => {
    next = (next + 1) % keyCount;
    return keys[next] as string;
  };
  const repeat =
    (op: () => Promise<unknown>): (() => Promise<void>) =>
    async () => {
      for (let n = 0; n < batch; n++) await op();
    };
  const scanned = (): Promise<unknown> =>
    store.view(async (tx) => {
      if ((await tx.scan("scan", "")).length !== 100) throw new Error("Scan100 did not see 100 entries");
    });
  const cases: StoreBenchCase[] = [
    { group: "kv Put", fn: repeat(() => store.update((tx) => tx.put("bench", key(), kvBenchValue))) },
    { group: "kv Get", fn: repeat(() => store.view((tx) => tx.get("bench", key()))) },
    { group: "kv Update", fn: repeat(() => store.update(async () => undefined)) },
    { group: "kv View", fn: repeat(() => store.view(async () => undefined)) },
    { group: "kv Scan100", fn: repeat(scanned) },
  ].map((c) => ({ ...c, group: `${prefix}${c.group}`, name, role: "ours" as const, batch }));
  return { cases, store, close: () => store.close() };
}
