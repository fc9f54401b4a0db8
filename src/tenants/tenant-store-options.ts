import type { Clock } from "../clock.js";
import type { ObjectStore } from "../objects/object-store.js";
import type { SqliteDatabase } from "../sql/index.js";
import type { TenantKey } from "./tenant-key.js";

/**
 * Options of {@link TenantStore}. Only `objectStore` is required.
 *
 * @example
 * ```ts
 * const tenants = new TenantStore({
 *   objectStore: new FileObjectStore({ root: "./.storeroom/objects" }),
 *   cacheRoot: "./.storeroom/cache",
 *   lruSize: 200,
 *   onReapFailure: (key, err) => log.warn({ tenant: String(key), err }, "tenant flush failed"),
 * });
 * ```
 */
export interface TenantStoreOptions {
  /** The durable store every tenant database is hydrated from and checkpointed to. */
  objectStore: ObjectStore;
  /** Directory of the local copies (created with mode 0700). Default `"./.storeroom/cache"`. */
  cacheRoot?: string;
  /** Most tenants kept open at once; opening one more evicts the least recently used unleased one. Default 1000. */
  lruSize?: number;
  /** A tenant nobody used for this long is checkpointed and closed by the reaper (every `idleTtlMs / 2`). `0` disables the reaper. Default 300000 (5 min). */
  idleTtlMs?: number;
  /** A tenant with at least this many changes since its last checkpoint is checkpointed in the background. Default 100. */
  checkpointWrites?: number;
  /** A dirty tenant is checkpointed at least this often; failed uploads are retried on the same tick. `0` disables the timer. Default 60000. */
  checkpointIntervalMs?: number;
  /** Opens a local tenant file. Default `openSqlite(path, { busyTimeoutMs: 10000 })` (WAL, foreign keys on). */
  connect?: (path: string) => Promise<SqliteDatabase>;
  /** Time source for idleness and checkpoint intervals. Default the system clock. */
  clock?: Clock;
  /**
   * Receives errors of background work (reaper, interval and write-count checkpoints, LRU
   * evictions). The tenant stays resident and dirty and is retried. Default: `process.emitWarning`.
   */
  onReapFailure?: (key: TenantKey, error: unknown) => void;
  /** Bytes of local files of evicted tenants kept as a warm cache (oldest removed first). Default 0: removed on eviction. */
  diskBudgetBytes?: number;
  /** Snapshots of at least this many bytes are uploaded in parts. Default 64 MiB (never below the store's part size). */
  multipartThresholdBytes?: number;
}
