import type { Clock } from "../clock.js";
import type { ObjectStore } from "../objects/index.js";
import type { Durability, ShipEvent } from "./replica-host.js";
import type { TenantKey } from "./tenant-key.js";
import type { TenantOwnership } from "./tenant-ownership.js";

/**
 * Options of {@link TenantStore.open}. Only `objectStore` is required.
 *
 * @example
 * ```ts
 * const tenants = await TenantStore.open({
 *   objectStore: new FileObjectStore({ root: "./.storeroom/objects" }),
 *   cacheRoot: "./.storeroom/cache",
 *   durability: "sync",
 *   onError: (err, key) => log.warn({ tenant: key?.toString(), err }, "tenant replication failed"),
 * });
 * ```
 */
export interface TenantStoreOptions {
  /** Where every tenant is replicated (manifest, snapshots, segments under `tenants/`). It must honour conditional writes. */
  objectStore: ObjectStore;
  /**
   * Directory of the local copies. Created with mode 0700 when missing; an existing directory
   * keeps its mode, and `open` emits a process warning when group or others have any access
   * to it. Default `"./.storeroom/cache"`.
   */
  cacheRoot?: string;
  /** Most tenants kept open at once; opening one more evicts the least recently used unleased one. Default 1000. */
  lruSize?: number;
  /** A tenant nobody used for this long is published and closed by the reaper (every `idleTtlMs / 2`). `0` disables the reaper. Default 300000 (5 min). */
  idleTtlMs?: number;
  /**
   * `"async"` (default): a write is acknowledged at local commit and published within
   * `syncIntervalMs`. `"sync"`: a write's promise resolves only once the manifest names its
   * segment (concurrent writes of a tenant share one segment).
   */
  durability?: Durability;
  /** In `async` durability, how long after a write it is published at the latest. Default 1000. */
  syncIntervalMs?: number;
  /** A new snapshot once the segments since the last one hold this fraction of the database size. Default 0.5. */
  snapshotFraction?: number;
  /** A new snapshot at least this often while the tenant changes; `0` turns the timer off. Default 21600000 (6 h). */
  snapshotIntervalMs?: number;
  /** History kept for point-in-time restore; older snapshots and segments are deleted. Default 86400000 (24 h). */
  retentionMs?: number;
  /** The WAL is checkpointed once the published part of it reaches this many bytes. Default 4 MiB. */
  walCheckpointBytes?: number;
  /** Objects no manifest names are deleted once this old (in-flight uploads of other writers are younger). Default 900000 (15 min). */
  orphanGraceMs?: number;
  /**
   * Start even though the object store ignores conditional writes (the probe at open found it):
   * concurrent writers then overwrite each other silently. A loud warning is emitted. Default false.
   */
  unsafeNoCas?: boolean;
  /** Time source for idleness, intervals and record times. Default the system clock. */
  clock?: Clock;
  /**
   * Receives errors of background work: a tenant's publication retries, reaper passes and LRU
   * evictions (with the tenant's `key`; the tenant stays resident and is retried) and a failed
   * background pass as a whole (without `key`). Default: `process.emitWarning`.
   */
  onError?: (error: unknown, key?: TenantKey) => void;
  /**
   * @deprecated Use `onError` (its arguments are `(error, key)`). Receives the errors that
   * name a tenant; the others become process warnings. Giving both is an error.
   */
  onReapFailure?: (key: TenantKey, error: unknown) => void;
  /** @deprecated Use `syncIntervalMs` (the longest a write waits for publication). Giving both is an error. */
  checkpointIntervalMs?: number;
  /** Called after each successful publication round (for metrics: bytes, transactions, lag). */
  onShipped?: (event: ShipEvent) => void;
  /** Bytes of local files of evicted tenants kept as a warm cache (oldest removed first). Default 0: removed on eviction. */
  diskBudgetBytes?: number;
  /**
   * Ownership leases, when several processes serve tenants from one object store: a tenant is
   * loaded only under this process's lease (else {@link TenantOwnedElsewhereError}), the
   * lease's fencing epoch is written into its manifest before it is served, and the lease is
   * given back when the tenant closes. Default none: this process is the only one serving its
   * tenants.
   */
  ownership?: TenantOwnership;
  /** Snapshots of at least this many compressed bytes are uploaded in parts. Default 64 MiB (never below the store's part size). */
  multipartThresholdBytes?: number;
}
