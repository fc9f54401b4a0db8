import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BackgroundJob, MAX_INTERVAL_MS } from "../background-job.js";
import { type Clock, isSchedulingClock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError, isStoreError, UnsupportedError } from "../errors.js";
import {
  booleanOption,
  clockOption,
  nonEmptyString,
  objectOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import { openSqlite } from "../sql/index.js";
import { lockCache } from "./cache-lock.js";
import { type CachedTenant, mayHoldUnpublished, scanCache } from "./cached-tenants.js";
import { probeConditionalWrites } from "./cas-probe.js";
import { type ConflictRecord, exportConflict, keepConflict, listConflicts } from "./conflict-records.js";
import { DiskBudget } from "./disk-budget.js";
import {
  type Durability,
  type ReplicaHost,
  type ReplicationCounters,
  type ReplicationSettings,
  zeroCounters,
} from "./replica-host.js";
import { MANIFEST_NAME } from "./replica-layout.js";
import { type PrepareContext, prepareReplica, summary } from "./replica-prepare.js";
import { count, forEachLimit, isClosed, resolveDeprecatedOptions, validKey } from "./store-helpers.js";
import { listTenants, type TenantListOptions } from "./tenant-catalog.js";
import { TenantCloseError, type TenantFailure } from "./tenant-close-error.js";
import { TenantConflictError } from "./tenant-conflict-error.js";
import { TenantDatabase, type TenantLeaser } from "./tenant-database.js";
import { TenantHandle } from "./tenant-handle.js";
import type { TenantKey, TenantKeyInit } from "./tenant-key.js";
import type { TenantLease, TenantOwnership } from "./tenant-ownership.js";
import { TenantReplica } from "./tenant-replica.js";
import type { TenantStoreOptions } from "./tenant-store-options.js";
import type { CheckpointResult, PassResult, TenantInfo, TenantListing } from "./tenant-store-results.js";
import { readWriterId } from "./writer-id.js";

interface Loading {
  waiters: number;
  promise: Promise<TenantHandle>;
}

/** Preparations of a tenant at load when its manifest keeps moving before the lease's epoch is written into it. */
const CLAIM_ATTEMPTS = 3;
/** Parallel evictions of one reaper pass or of close(). */
const PASS_CONCURRENCY = 8;
/** Parallel publications of one publication pass. */
const PUBLISH_CONCURRENCY = 16;
/** Longest pause between two timer-driven publication passes. */
const MAX_PUBLISH_PAUSE_MS = 100;
/**
 * The timer publishes a tenant at most once per this fraction of `syncIntervalMs` (from the
 * start of its previous publication): the rest of the interval covers the wait for the next
 * pass and the publication itself, even when the process is busy.
 */
const PUBLISH_SPACING = 0.6;
/** Default compressed size from which snapshots are uploaded in parts. */
const DEFAULT_MULTIPART_BYTES = 64 * 1024 * 1024;
/** Page bytes of WAL frames per segment at most (a larger transaction still goes whole). */
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;

/**
 * One SQLite database per tenant, hydrated from object storage on first use, kept open in an
 * LRU cache, and replicated continuously: committed WAL frames are published as segments
 * named by a conditionally written manifest (see docs/tenants.md).
 *
 * @example
 * ```ts
 * const tenants = await TenantStore.open({ objectStore, cacheRoot: "./.storeroom/cache", durability: "sync" });
 * await tenants.withTenant(TenantKey.user("acme", "ada"), async (db) => {
 *   await db.run("CREATE TABLE IF NOT EXISTS notes (body TEXT)");
 *   await db.run("INSERT INTO notes VALUES ($1)", ["hello"]); // resolves once published
 * });
 * await tenants.close(); // publishes what is left and closes every tenant
 * ```
 */
export class TenantStore {
  /** Absolute path of the local cache. */
  readonly cacheRoot: string;
  /** Id of this cache's writer, kept in `<cacheRoot>/.writer`: how a restarted process recognises its own manifests. */
  readonly writerId: string;
  readonly durability: Durability;
  readonly #objects: ObjectStore;
  readonly #lruSize: number;
  readonly #idleTtlMs: number;
  readonly #clock: Clock;
  readonly #onError: (error: unknown, key?: TenantKey) => void;
  readonly #budget: DiskBudget;
  readonly #counters: ReplicationCounters = zeroCounters();
  readonly #host: ReplicaHost;
  readonly #prepare: PrepareContext;
  /** Resident tenants in least- to most-recently-used order (Map order; use re-inserts). */
  readonly #resident = new Map<string, TenantHandle>();
  readonly #loading = new Map<string, Loading>();
  readonly #retiring = new Map<string, Promise<void>>();
  /** Fenced replicas whose conflict no caller has seen yet: raised once by the tenant's next call. */
  readonly #notices = new Map<string, TenantReplica>();
  /** Conflicts the recovery pass found loading a tenant (a diverged copy): raised once by the tenant's next call. */
  readonly #unseenConflicts = new Map<string, TenantConflictError>();
  /** Conflicts a caller's own load already raised, so the recovery pass sharing that load does not raise them again. */
  readonly #seenConflicts = new WeakSet<TenantConflictError>();
  /** Handles leased by enclosing withTenant callbacks, so nested calls never wait for themselves. */
  readonly #context = new AsyncLocalStorage<ReadonlyMap<string, TenantHandle>>();
  readonly #leaser: TenantLeaser;
  readonly #reaper: BackgroundJob<PassResult>;
  readonly #publisher: BackgroundJob<PassResult>;
  readonly #publishSpacingMs: number;
  /** Milliseconds for spacing publications: the store's clock when it schedules (tests), else real time. */
  readonly #spacingNow: () => number;
  readonly #ownership: TenantOwnership | undefined;
  readonly #unlock: () => void;
  #recovering: Promise<void> = Promise.resolve();
  /** The conditional-write check, once it passed (or was overridden); `undefined` until then. */
  #checked: Promise<void> | undefined;
  #unsafeNoCas = false;
  #closing: Promise<void> | undefined;

  private constructor(options: TenantStoreOptions) {
    const op = "tenants.open";
    this.#objects = objectStoreOption(options.objectStore, "objectStore", op);
    this.cacheRoot = resolve(
      options.cacheRoot === undefined ? "./.storeroom/cache" : nonEmptyString(options.cacheRoot, "cacheRoot", op),
    );
    const resolved = resolveDeprecatedOptions(options);
    this.#lruSize = positiveInteger(options.lruSize, "lruSize", "tenants.open", 1000);
    this.#idleTtlMs = count(options.idleTtlMs ?? 300_000, "idleTtlMs", 0);
    this.durability = options.durability ?? "async";
    const settings: ReplicationSettings = {
      durability: this.durability,
      syncIntervalMs: count(resolved.syncIntervalMs ?? 1000, "syncIntervalMs", 0),
      snapshotFraction: count(options.snapshotFraction ?? 0.5, "snapshotFraction", 0),
      snapshotIntervalMs: count(options.snapshotIntervalMs ?? 6 * 3_600_000, "snapshotIntervalMs", 0),
      retentionMs: count(options.retentionMs ?? 24 * 3_600_000, "retentionMs", 0),
      walCheckpointBytes: count(options.walCheckpointBytes ?? 4 * 1024 * 1024, "walCheckpointBytes", 0),
      maxSegmentBytes: MAX_SEGMENT_BYTES,
      orphanGraceMs: count(options.orphanGraceMs ?? 900_000, "orphanGraceMs", 0),
      multipartBytes: Math.max(
        count(options.multipartThresholdBytes ?? DEFAULT_MULTIPART_BYTES, "multipartThresholdBytes", 1),
        this.#objects.partSize,
      ),
    };
    this.#ownership =
      options.ownership === undefined
        ? undefined
        : objectOption(options.ownership, "ownership", op, "a TenantOwnership", ["acquire", "advance", "release"]);
    this.#budget = new DiskBudget(count(options.diskBudgetBytes ?? 0, "diskBudgetBytes", 0));
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#onError =
      resolved.onError ??
      ((error, key) =>
        process.emitWarning(
          `${key === undefined ? "tenant store" : `tenant ${key}`}: ${error instanceof Error ? error.message : String(error)}`,
        ));
    this.#leaser = {
      acquire: (key) => this.#acquire(key),
      release: (handle) => this.#release(handle),
    };
    mkdirSync(this.cacheRoot, { recursive: true, mode: 0o700 });
    warnIfShared(this.cacheRoot);
    this.#unlock = lockCache(this.cacheRoot);
    try {
      this.writerId = readWriterId(this.cacheRoot);
    } catch (err) {
      this.#unlock();
      throw err;
    }
    const onShipped = options.onShipped;
    this.#host = {
      writer: this.writerId,
      cacheRoot: this.cacheRoot,
      tempDir: join(this.cacheRoot, ".tmp"),
      clock: this.#clock,
      settings,
      counters: this.#counters,
      ready: () => this.#probe(),
      shipped: (event) => onShipped?.(event),
      failed: (key, error) => this.#onError(error, key),
      fenced: (key) => this.#fenced(key),
    };
    this.#prepare = {
      host: this.#host,
      store: this.#objects,
      multipartBytes: settings.multipartBytes,
      quietHost: { ...this.#host, fenced: () => undefined },
    };
    this.#reaper = new BackgroundJob({
      name: "tenant reaper",
      intervalMs: this.#idleTtlMs === 0 ? 0 : halfInterval(this.#idleTtlMs),
      run: () => this.#reapIdle(),
      clock: this.#clock,
      onError: (err) => this.#onError(err),
    });
    this.#publishSpacingMs = Math.floor(settings.syncIntervalMs * PUBLISH_SPACING);
    this.#spacingNow = isSchedulingClock(this.#clock) ? () => this.#clock.now() : () => performance.now();
    this.#publisher = new BackgroundJob({
      name: "tenant publication",
      intervalMs:
        settings.syncIntervalMs === 0 ? 0 : Math.min(MAX_PUBLISH_PAUSE_MS, halfInterval(settings.syncIntervalMs)),
      run: (trigger) => this.#publishDue(trigger === "timer" ? this.#publishSpacingMs : 0),
      clock: this.#clock,
      onError: (err) => this.#onError(err),
    });
  }

  /**
   * Opens a store on `options.cacheRoot` (taking its lock: {@link BusyError} when a live store
   * holds it), after probing that the object store honours conditional writes: one that
   * ignores them is refused with {@link UnsupportedError} unless `unsafeNoCas` is set. Tenants
   * a crashed process left with unpublished changes are then published in the background.
   */
  static async open(options: TenantStoreOptions): Promise<TenantStore> {
    if (options?.objectStore === undefined) {
      throw new InvalidArgumentError("objectStore is required", { op: "tenants.open" });
    }
    if (options.durability !== undefined && options.durability !== "async" && options.durability !== "sync") {
      throw new InvalidArgumentError(`durability must be "async" or "sync", got ${String(options.durability)}`, {
        op: "tenants.open",
      });
    }
    const unsafeNoCas = booleanOption(options.unsafeNoCas, "unsafeNoCas", "tenants.open", false);
    const store = new TenantStore(options);
    store.#unsafeNoCas = unsafeNoCas;
    try {
      await store.#probe();
    } catch (err) {
      if (isStoreError(err, "UNSUPPORTED")) {
        store.#unlock();
        throw err;
      }
      // Unreachable now (a network error, an outage): start, and check before the first publication.
      process.emitWarning(
        `storeroom: could not check that the object store honours conditional writes (${err instanceof Error ? err.message : String(err)}); checking again before the first publication`,
      );
    }
    store.#reaper.start();
    store.#publisher.start();
    store.#recovering = store.#recover();
    return store;
  }

  /**
   * Resolves once the background pass started by {@link TenantStore.open} has loaded and
   * published every cached tenant a crashed store left with possibly unpublished changes.
   * Failures went to `onError` (those tenants are retried in the background).
   */
  recovered(): Promise<void> {
    return this.#recovering;
  }

  /**
   * Checks (once; again after a failure to reach the store) that the object store refuses
   * conditional writes that fail: {@link UnsupportedError} when it ignores them, unless
   * `unsafeNoCas` (then a loud warning).
   */
  #probe(): Promise<void> {
    this.#checked ??= (async () => {
      const ignored = await probeConditionalWrites(this.#objects, this.writerId);
      if (ignored.length === 0) return;
      const problem = `the object store ignores conditional writes (${ignored.join(", ")}): two writers of one tenant would overwrite each other without a word`;
      if (!this.#unsafeNoCas) {
        throw new UnsupportedError(
          `${problem}. Use a store that honours If-Match and If-None-Match, or start with --unsafe-no-cas (TenantStoreOptions.unsafeNoCas) to run anyway.`,
          { op: "tenants.open" },
        );
      }
      process.emitWarning(`storeroom: UNSAFE: ${problem}; running anyway because of --unsafe-no-cas`);
    })();
    // A store that could not be reached is asked again next time; a finding stands.
    this.#checked.catch((err: unknown) => {
      if (!isStoreError(err, "UNSUPPORTED")) this.#checked = undefined;
    });
    return this.#checked;
  }

  /** Tenants open now, being loaded and leased; bytes of kept files; replication counters since open. */
  get stats(): {
    resident: number;
    loading: number;
    leased: number;
    keptBytes: number;
    replication: Readonly<ReplicationCounters>;
  } {
    let leased = 0;
    for (const h of this.#resident.values()) if (h.leases > 0) leased += 1;
    return {
      resident: this.#resident.size,
      loading: this.#loading.size,
      leased,
      keptBytes: this.#budget.bytes,
      replication: { ...this.#counters },
    };
  }

  /** Replication lag now: the oldest unpublished write among resident tenants (ms) and the WAL bytes not yet published. */
  lag(): { ms: number; bytes: number } {
    const now = this.#clock.now();
    let ms = 0;
    let bytes = 0;
    for (const h of this.#resident.values()) {
      if (h.state !== "open") continue;
      ms = Math.max(ms, h.replica.lagMs(now));
      bytes += h.replica.lagBytes();
    }
    return { ms, bytes };
  }

  /**
   * The tenant's database, hydrated now if it is not resident (so load errors surface here:
   * {@link InvalidKeyError}, {@link CorruptDatabaseError}, {@link ClosedError}, a pending
   * {@link TenantConflictError}). The result is a {@link TenantDatabase} view that leases the
   * tenant per call, so eviction never closes it under a caller.
   */
  async get(key: TenantKey | TenantKeyInit): Promise<TenantDatabase> {
    const valid = validKey(key);
    this.#release(await this.#acquire(valid));
    return new TenantDatabase(valid, this.#leaser);
  }

  /**
   * Runs `fn` with the tenant leased for the whole callback: it stays resident and open (not
   * evicted, not reaped; `evict` and `close` wait for it) until `fn` settles.
   */
  async withTenant<T>(key: TenantKey | TenantKeyInit, fn: (db: TenantDatabase) => Promise<T>): Promise<T> {
    const valid = validKey(key);
    const handle = await this.#acquire(valid);
    const view = new TenantDatabase(valid, this.#leaser);
    const leased = new Map(this.#context.getStore() ?? []);
    leased.set(handle.id, handle);
    try {
      return await this.#context.run(leased, () => fn(view));
    } finally {
      await view.close();
      this.#release(handle);
    }
  }

  /**
   * Publishes every committed transaction of a resident tenant now (segments, then the
   * manifest). {@link UploadFailedError}: the writes stay local and are retried;
   * {@link TenantConflictError}: another writer took the tenant.
   */
  async checkpoint(key: TenantKey | TenantKeyInit): Promise<CheckpointResult> {
    const valid = validKey(key);
    this.#assertOpen("tenants.checkpoint");
    const handle = this.#resident.get(valid.toString());
    if (handle === undefined || handle.state === "closed") {
      return { key: valid, uploaded: false, txid: 0, etag: null, bytes: 0 };
    }
    const replica = handle.replica;
    let published: { transactions: number; bytes: number };
    try {
      published = await replica.flush();
    } catch (err) {
      if (err === replica.conflict) replica.conflictSeen = true;
      throw err;
    }
    const { transactions, bytes } = published;
    return {
      key: valid,
      uploaded: transactions > 0 || bytes > 0,
      txid: replica.manifest?.txid ?? 0,
      etag: replica.etag,
      bytes,
    };
  }

  /**
   * Publishes and closes a tenant, after the calls using it finish. On failure the tenant stays
   * resident and the error is thrown ({@link UploadFailedError}, {@link TenantConflictError}).
   * Evicting a tenant that is not resident does nothing.
   */
  async evict(key: TenantKey | TenantKeyInit): Promise<void> {
    const valid = validKey(key);
    this.#assertOpen("tenants.evict");
    const id = valid.toString();
    await this.#loading.get(id)?.promise.catch(() => undefined);
    const handle = this.#resident.get(id);
    if (handle !== undefined) await this.#retire(handle, true);
    else await this.#retiring.get(id);
  }

  /**
   * Every tenant in object storage (optionally of one org), ordered by key: replicated tenants
   * (a manifest under `tenants/`) and tenants still in the old single-object layout. Walks every
   * object under the prefixes, so it costs a listing of the whole tenant history. The same as
   * {@link listTenants}, which needs no store (and no cache lock).
   */
  list(options: TenantListOptions = {}): Promise<TenantListing[]> {
    return listTenants(this.#objects, options);
  }

  /** What the store and object storage know about one tenant. */
  async inspect(key: TenantKey | TenantKeyInit): Promise<TenantInfo> {
    const valid = validKey(key);
    const handle = this.#resident.get(valid.toString());
    const live = handle !== undefined && handle.state !== "closed";
    const replica = live ? handle.replica : undefined;
    return {
      key: valid,
      manifestKey: valid.prefix() + MANIFEST_NAME,
      localPath: valid.localPath(this.cacheRoot),
      resident: live,
      leases: live ? handle.leases : 0,
      durability: this.durability,
      replica:
        replica === undefined
          ? null
          : {
              txid: replica.manifest?.txid ?? 0,
              generation: replica.manifest?.generation ?? null,
              epoch: replica.manifest?.epoch ?? 0,
              owned: replica.position.owned,
              lagMs: replica.lagMs(this.#clock.now()),
              conflict: replica.conflict?.recordId ?? null,
            },
      manifest: await this.#objects.head(valid.prefix() + MANIFEST_NAME),
    };
  }

  /** Tenant files in the local cache, with the replication position recorded next to each. */
  async listCached(): Promise<CachedTenant[]> {
    return scanCache(this.cacheRoot);
  }

  /** Conflict records kept in this cache, oldest first. */
  async conflicts(): Promise<ConflictRecord[]> {
    return listConflicts(this.cacheRoot);
  }

  /** Writes the database of conflict record `id` to `to` (a new file). {@link NotFoundError} for an unknown id. */
  async exportConflict(id: string, to: string): Promise<ConflictRecord> {
    return exportConflict(this.cacheRoot, id, to);
  }

  /**
   * Publishes every resident tenant with writes not yet published, the longest waiting first (a
   * tenant whose last attempt failed waits for its retry pause). The publication timer runs the
   * same pass every 100 ms (or `syncIntervalMs / 2` when shorter), but publishes a tenant at
   * most once per 0.6 x `syncIntervalMs` (from the start of its previous publication), so a
   * busy tenant's writes share publications and still wait no longer than about
   * `syncIntervalMs`. Failures go to `onError`. Resolves with the tenants published and failed.
   */
  publishPending(): Promise<PassResult> {
    return this.#publisher.runOnce();
  }

  /** @deprecated Use {@link TenantStore.publishPending}: publication is continuous, nothing waits for a checkpoint. */
  checkpointDue(): Promise<PassResult> {
    return this.publishPending();
  }

  /** Publishes the due tenants not published within `spacingMs`, the longest waiting first. */
  async #publishDue(spacingMs: number): Promise<PassResult> {
    if (this.#closing !== undefined) return { done: 0, failed: 0 };
    const now = this.#clock.now();
    const at = this.#spacingNow();
    const due = [...this.#resident.values()]
      .filter((h) => h.state === "open" && h.replica.due(now) && at - h.publishedAt >= spacingMs)
      .sort((a, b) => b.replica.lagMs(now) - a.replica.lagMs(now));
    for (const h of due) h.publishedAt = at;
    let done = 0;
    let failed = 0;
    await forEachLimit(due, PUBLISH_CONCURRENCY, async (h) => {
      if (await h.replica.publishDue()) done += 1;
      else failed += 1;
    });
    return { done, failed };
  }

  /**
   * Evicts every unleased tenant idle for `idleTtlMs` (the reaper runs this every
   * `idleTtlMs / 2`; passes never overlap). Each eviction runs on its own; failures go to
   * `onError` and the tenant stays resident for the next pass. Does nothing when `idleTtlMs` is 0.
   */
  reap(): Promise<PassResult> {
    return this.#reaper.runOnce();
  }

  async #reapIdle(): Promise<PassResult> {
    if (this.#idleTtlMs === 0 || this.#closing !== undefined) return { done: 0, failed: 0 };
    const now = this.#clock.now();
    const idle = [...this.#resident.values()].filter(
      (h) => h.state === "open" && h.leases === 0 && now - h.lastAccess >= this.#idleTtlMs,
    );
    let done = 0;
    let failed = 0;
    await forEachLimit(idle, PASS_CONCURRENCY, async (h) => {
      try {
        if (await this.#retire(h, false)) done += 1;
      } catch (err) {
        failed += 1;
        this.#onError(err, h.key);
      }
    });
    return { done, failed };
  }

  /**
   * Stops the timers, waits for running calls, publishes and closes every tenant. Tenants that
   * could not be published are listed in one {@link TenantCloseError}; their local files stay in
   * the cache, and a store opened later on the same `cacheRoot` publishes them. Idempotent:
   * later calls return the first call's outcome.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    try {
      await this.#drain();
    } finally {
      this.#unlock();
    }
  }

  async #drain(): Promise<void> {
    await Promise.all([this.#reaper.stop(), this.#publisher.stop()]);
    await this.#recovering;
    await Promise.allSettled([...this.#loading.values()].map((l) => l.promise));
    await Promise.allSettled([...this.#retiring.values()]);
    const handles = [...this.#resident.values()].filter((h) => h.state === "open");
    const failures: TenantFailure[] = [];
    await forEachLimit(handles, PASS_CONCURRENCY, async (h) => {
      try {
        await this.#retire(h, true);
      } catch (error) {
        if (h.replica.conflict === error) return;
        failures.push({ key: h.key, error });
        if (h.state !== "closed") {
          h.state = "closed";
          this.#resident.delete(h.id);
          await h.replica.abandon();
        }
      }
    });
    if (failures.length > 0) throw new TenantCloseError(handles.length - failures.length, handles.length, failures);
  }

  /** Loads and publishes, in the background, every cached tenant a crashed store left with possibly unpublished changes. */
  async #recover(): Promise<void> {
    let cached: CachedTenant[];
    try {
      cached = await scanCache(this.cacheRoot);
    } catch (err) {
      process.emitWarning(`tenant store recovery scan failed: ${String(err)}`);
      return;
    }
    const candidates: CachedTenant[] = [];
    for (const c of cached) if (await mayHoldUnpublished(c)) candidates.push(c);
    // Runs to the end even once close() started: close waits for it and publishes what it
    // loaded, so a clean shutdown right after a restart still publishes the crashed writes.
    // Beyond lruSize candidates, loading the next evicts (publishes and closes) a recovered one.
    await forEachLimit(candidates, 4, async (c) => {
      try {
        const handle = await this.#acquire(c.key, true);
        try {
          await handle.replica.flush();
        } finally {
          this.#release(handle);
        }
      } catch (err) {
        if (err instanceof ClosedError) return;
        this.#onError(err, c.key);
        if (err instanceof TenantConflictError && !this.#seenConflicts.has(err)) {
          this.#unseenConflicts.set(c.key.toString(), err);
        }
      }
    });
  }

  /** `recovering`: the recovery pass, which may still load tenants while the store is closing. */
  async #acquire(key: TenantKey, recovering = false): Promise<TenantHandle> {
    const id = key.toString();
    const enclosing = this.#context.getStore()?.get(id);
    if (enclosing !== undefined && enclosing.state !== "closed") {
      enclosing.acquire(this.#clock.now());
      return enclosing;
    }
    for (;;) {
      if (!recovering) this.#assertOpen("tenants.get");
      const noticed = this.#notices.get(id);
      if (noticed !== undefined) {
        this.#notices.delete(id);
        if (!noticed.conflictSeen && noticed.conflict !== undefined) {
          noticed.conflictSeen = true;
          throw noticed.conflict;
        }
      }
      const unseen = recovering ? undefined : this.#unseenConflicts.get(id);
      if (unseen !== undefined) {
        this.#unseenConflicts.delete(id);
        throw unseen;
      }
      const handle = this.#resident.get(id);
      if (handle?.state === "open") {
        this.#resident.delete(id);
        this.#resident.set(id, handle);
        handle.acquire(this.#clock.now());
        return handle;
      }
      const retiring = this.#retiring.get(id);
      if (retiring !== undefined) {
        await retiring;
        continue;
      }
      let loading = this.#loading.get(id);
      if (loading === undefined) {
        const entry: Loading = { waiters: 0, promise: Promise.resolve(undefined as never) };
        this.#loading.set(id, entry);
        entry.promise = this.#load(key, entry);
        loading = entry;
      }
      loading.waiters += 1;
      if (recovering) return loading.promise;
      return loading.promise.catch((err: unknown) => {
        if (err instanceof TenantConflictError) {
          this.#seenConflicts.add(err);
          this.#unseenConflicts.delete(id);
        }
        throw err;
      });
    }
  }

  #release(handle: TenantHandle): void {
    handle.release(this.#clock.now());
  }

  async #load(key: TenantKey, loading: Loading): Promise<TenantHandle> {
    const id = key.toString();
    const path = key.localPath(this.cacheRoot);
    let handle: TenantHandle | undefined;
    let lease: TenantLease | undefined;
    try {
      lease = await this.#ownership?.acquire(key);
      await this.#budget.claim(path);
      for (let attempt = 1; handle === undefined; attempt++) {
        const prepared = await prepareReplica(this.#prepare, key);
        const replica = new TenantReplica(
          this.#host,
          key,
          path,
          prepared.objects,
          prepared.stored,
          prepared.position,
          prepared.hasContent,
        );
        const db = await openSqlite(path, { busyTimeoutMs: 10_000, walAutocheckpoint: 0, clock: this.#clock });
        replica.attach(db);
        if (lease !== undefined) {
          try {
            lease = await this.#claim(key, replica, lease);
          } catch (err) {
            await replica.abandon();
            // The manifest moved between preparing and claiming (a late write of the earlier owner): prepare again.
            if (isStoreError(err, "CONFLICT") && replica.conflict === undefined && attempt < CLAIM_ATTEMPTS) continue;
            throw err;
          }
        }
        handle = new TenantHandle(key, path, db, replica, this.#clock.now());
        handle.lease = lease;
        if (prepared.pending) replica.markPending();
      }
    } catch (err) {
      this.#loading.delete(id);
      if (lease !== undefined) await this.#ownership?.release(key, lease);
      throw err;
    }
    // Hand the lease to every caller that waited for this load in the same step that publishes it.
    this.#resident.set(id, handle);
    handle.leases += loading.waiters;
    this.#loading.delete(id);
    await this.#evictOverflow();
    return handle;
  }

  /**
   * Writes the lease's fencing epoch into the tenant's manifest before the tenant is served
   * (raising the lease above an epoch the manifest already names), so the previous owner's
   * publications fail their condition from now on.
   */
  async #claim(key: TenantKey, replica: TenantReplica, lease: TenantLease): Promise<TenantLease> {
    const ownership = this.#ownership as TenantOwnership;
    const m = replica.manifest;
    let held = lease;
    if (m !== null && m.epoch >= held.epoch && !(m.epoch === held.epoch && m.writer === this.writerId)) {
      held = await ownership.advance(key, held, m.epoch + 1);
    }
    await replica.claim(held.epoch, held.stolen);
    return held;
  }

  async #evictOverflow(): Promise<void> {
    let open = 0;
    for (const h of this.#resident.values()) if (h.state === "open") open += 1;
    let excess = open - this.#lruSize;
    if (excess <= 0) return;
    const victims: TenantHandle[] = [];
    for (const h of this.#resident.values()) {
      if (excess === 0) break;
      if (h.state === "open" && h.leases === 0) {
        victims.push(h);
        excess -= 1;
      }
    }
    await Promise.all(victims.map((v) => this.#retire(v, false).catch((err) => this.#onError(err, v.key))));
  }

  /**
   * Publishes and closes a handle. New callers wait for the outcome; with `waitForLeases` false
   * a leased handle is left alone. On a publication failure the handle is open again and the
   * error is thrown; a fenced handle's copy becomes a conflict record and its conflict is thrown.
   */
  async #retire(handle: TenantHandle, waitForLeases: boolean): Promise<boolean> {
    if (handle.state !== "open") {
      await this.#retiring.get(handle.id);
      return handle.state === "closed";
    }
    handle.state = "retiring";
    let settle: () => void = () => undefined;
    this.#retiring.set(handle.id, new Promise<void>((done) => (settle = done)));
    try {
      if (handle.leases > 0) {
        if (!waitForLeases) {
          handle.state = "open";
          return false;
        }
        await handle.whenIdle();
      }
      const replica = handle.replica;
      try {
        await replica.close();
      } catch (err) {
        handle.state = "open";
        throw err;
      }
      handle.state = "closed";
      await this.#releaseLease(handle);
      if (replica.conflict !== undefined) {
        await this.#keepConflict(replica);
        throw replica.conflict;
      }
      await this.#budget.keep(handle.path);
      return true;
    } finally {
      // The key stays taken until its files are settled, so no load races the cleanup.
      if (isClosed(handle) && this.#resident.get(handle.id) === handle) this.#resident.delete(handle.id);
      this.#retiring.delete(handle.id);
      settle();
    }
  }

  async #releaseLease(handle: TenantHandle): Promise<void> {
    const lease = handle.lease;
    handle.lease = undefined;
    if (lease !== undefined) await this.#ownership?.release(handle.key, lease);
  }

  async #keepConflict(replica: TenantReplica): Promise<void> {
    const planned = replica.planned as { id: string; keptAt: string };
    await keepConflict(this.cacheRoot, replica.key, replica.path, planned, this.#clock.now(), {
      reason: "fenced",
      writer: this.writerId,
      local: { generation: replica.position.generation, epoch: replica.position.epoch, txid: replica.position.txid },
      unpublishedTransactions: replica.unpublished,
      remote: summary(replica.remote),
    });
  }

  /** A replica lost its tenant to another writer: count it, raise it once, and retire the copy as a conflict record. */
  #fenced(key: TenantKey): void {
    this.#counters.conflicts += 1;
    const handle = this.#resident.get(key.toString());
    if (handle === undefined || handle.replica.conflict === undefined) return;
    this.#notices.set(handle.id, handle.replica);
    if (handle.state !== "open") return;
    const conflict: TenantConflictError = handle.replica.conflict;
    this.#retire(handle, true).catch((err) => {
      if (err !== conflict) this.#onError(err, key);
    });
  }

  #assertOpen(op: string): void {
    if (this.#closing !== undefined) throw new ClosedError("tenant store is closed", { op });
  }
}

/** Half an interval, at least 1 ms: a job ticking this often acts within the interval. */
function halfInterval(ms: number): number {
  return Math.max(1, Math.floor(Math.min(ms, MAX_INTERVAL_MS) / 2));
}

/**
 * A process warning when the cache directory (created 0700, or found as it is) lets group or
 * others in: the tenant databases in it are private data. Its mode is left alone, since the
 * operator may share it on purpose; the warning goes to the process like the store's other
 * findings at open, not to `onError`, which counts background failures.
 */
function warnIfShared(cacheRoot: string): void {
  if (process.platform === "win32") return;
  const mode = statSync(cacheRoot).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  process.emitWarning(
    `storeroom: tenant cache ${cacheRoot} is open to group or others (mode 0${mode.toString(8)}) and holds tenant databases; chmod 700 it to keep them private (an existing directory keeps its mode)`,
  );
}
