import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError, isStoreError, UploadFailedError } from "../errors.js";
import type { ObjectStore } from "../objects/object-store.js";
import { openSqlite, type SqliteDatabase } from "../sql/index.js";
import { lockCache } from "./cache-lock.js";
import { writeCacheState } from "./cache-state.js";
import { type CachedTenant, scanCache } from "./cached-tenants.js";
import { DiskBudget } from "./disk-budget.js";
import { conflictPath, moveAside, prepareLocalCopy, tempDir } from "./local-copy.js";
import { uploadSnapshot } from "./snapshot-upload.js";
import { count, forEachLimit, isClosed, validKey } from "./store-helpers.js";
import { TenantCloseError, type TenantFailure } from "./tenant-close-error.js";
import { TenantConflictError } from "./tenant-conflict-error.js";
import { TenantDatabase, type TenantLeaser } from "./tenant-database.js";
import { TenantHandle } from "./tenant-handle.js";
import { TenantKey, type TenantKeyInit } from "./tenant-key.js";
import type { TenantStoreOptions } from "./tenant-store-options.js";
import type { CheckpointResult, PassResult, TenantInfo, TenantListing } from "./tenant-store-results.js";

interface Loading {
  waiters: number;
  promise: Promise<TenantHandle>;
}

/** Parallel uploads of one background pass or of close(). */
const PASS_CONCURRENCY = 8;
/** How long after a failed upload the write-count trigger stays quiet. */
const WRITE_RETRY_BACKOFF_MS = 1000;
/** Default size from which snapshots are uploaded in parts. */
const DEFAULT_MULTIPART_BYTES = 64 * 1024 * 1024;

/**
 * One SQLite database per tenant, hydrated from object storage on first use, kept open in an
 * LRU cache, checkpointed back with generation-checked (CAS) uploads. See docs/tenants.md.
 *
 * @example
 * ```ts
 * const tenants = new TenantStore({ objectStore, cacheRoot: "./.storeroom/cache" });
 * await tenants.withTenant(TenantKey.user("acme", "ada"), async (db) => {
 *   await db.run("CREATE TABLE IF NOT EXISTS notes (body TEXT)");
 *   await db.run("INSERT INTO notes VALUES ($1)", ["hello"]);
 * });
 * await tenants.close(); // uploads every dirty tenant
 * ```
 */
export class TenantStore {
  /** Absolute path of the local cache. */
  readonly cacheRoot: string;
  readonly #objects: ObjectStore;
  readonly #lruSize: number;
  readonly #idleTtlMs: number;
  readonly #checkpointWrites: number;
  readonly #checkpointIntervalMs: number;
  readonly #multipartBytes: number;
  readonly #connect: (path: string) => Promise<SqliteDatabase>;
  readonly #clock: Clock;
  readonly #onFailure: (key: TenantKey, error: unknown) => void;
  readonly #budget: DiskBudget;
  /** Resident tenants in least- to most-recently-used order (Map order; use re-inserts). */
  readonly #resident = new Map<string, TenantHandle>();
  readonly #loading = new Map<string, Loading>();
  readonly #retiring = new Map<string, Promise<void>>();
  /** Conflicts found by background work, thrown once by the tenant's next call. */
  readonly #notices = new Map<string, TenantConflictError>();
  /** Handles leased by enclosing withTenant callbacks, so nested calls never wait for themselves. */
  readonly #context = new AsyncLocalStorage<ReadonlyMap<string, TenantHandle>>();
  readonly #leaser: TenantLeaser;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unlock: () => void;
  #reaping = false;
  #ticking = false;
  #closing: Promise<void> | undefined;

  constructor(options: TenantStoreOptions) {
    if (options?.objectStore === undefined) {
      throw new InvalidArgumentError("TenantStore needs an objectStore", { op: "tenants.open" });
    }
    this.#objects = options.objectStore;
    this.cacheRoot = resolve(options.cacheRoot ?? "./.storeroom/cache");
    this.#lruSize = count(options.lruSize ?? 1000, "lruSize", 1);
    this.#idleTtlMs = count(options.idleTtlMs ?? 300_000, "idleTtlMs", 0);
    this.#checkpointWrites = count(options.checkpointWrites ?? 100, "checkpointWrites", 1);
    this.#checkpointIntervalMs = count(options.checkpointIntervalMs ?? 60_000, "checkpointIntervalMs", 0);
    this.#multipartBytes = Math.max(
      count(options.multipartThresholdBytes ?? DEFAULT_MULTIPART_BYTES, "multipartThresholdBytes", 1),
      this.#objects.partSize,
    );
    this.#budget = new DiskBudget(count(options.diskBudgetBytes ?? 0, "diskBudgetBytes", 0));
    this.#connect = options.connect ?? ((path) => openSqlite(path, { busyTimeoutMs: 10_000 }));
    this.#clock = options.clock ?? systemClock;
    this.#onFailure =
      options.onReapFailure ??
      ((key, error) => process.emitWarning(`tenant ${key}: ${error instanceof Error ? error.message : String(error)}`));
    this.#leaser = {
      acquire: (key) => this.#acquire(key),
      release: (handle, wrote) => this.#release(handle, wrote),
    };
    mkdirSync(this.cacheRoot, { recursive: true, mode: 0o700 });
    this.#unlock = lockCache(this.cacheRoot);
    if (this.#idleTtlMs > 0) this.#every(this.#idleTtlMs / 2, () => this.reap());
    if (this.#checkpointIntervalMs > 0) this.#every(this.#checkpointIntervalMs / 2, () => this.checkpointDue());
  }

  /** Tenants open now, being loaded, and leased. */
  get stats(): { resident: number; loading: number; leased: number; keptBytes: number } {
    let leased = 0;
    for (const h of this.#resident.values()) if (h.leases > 0) leased += 1;
    return { resident: this.#resident.size, loading: this.#loading.size, leased, keptBytes: this.#budget.bytes };
  }

  /**
   * The tenant's database, hydrated now if it is not resident (so load errors surface here:
   * {@link InvalidKeyError}, {@link CorruptDatabaseError}, {@link ClosedError}, a pending
   * {@link TenantConflictError}). The result is a {@link TenantDatabase} view that leases the
   * tenant per call, so eviction never closes it under a caller.
   */
  async get(key: TenantKey | TenantKeyInit): Promise<TenantDatabase> {
    const valid = validKey(key);
    this.#release(await this.#acquire(valid), false);
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
      this.#release(handle, true);
    }
  }

  /**
   * Adds `n` to the tenant's change count (writes are counted automatically; this is for
   * changes the store cannot see). A tenant that is not resident has nothing to upload, so
   * the call then changes nothing.
   */
  async markDirty(key: TenantKey | TenantKeyInit, n = 1): Promise<void> {
    const valid = validKey(key);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError("markDirty needs a positive integer", { op: "tenants.markDirty" });
    const handle = this.#resident.get(valid.toString());
    if (handle === undefined || handle.state === "closed") return;
    handle.mark(n);
    this.#release(handle, true, false);
  }

  /**
   * Uploads a consistent snapshot of a resident, dirty tenant (writers keep going meanwhile).
   * {@link UploadFailedError} (backend error as `cause`): the tenant stays resident and dirty.
   * {@link TenantConflictError}: another process wrote the object; the local copy is kept aside.
   */
  async checkpoint(key: TenantKey | TenantKeyInit): Promise<CheckpointResult> {
    const valid = validKey(key);
    this.#assertOpen("tenants.checkpoint");
    const handle = this.#resident.get(valid.toString());
    if (handle === undefined || handle.state === "closed") return { key: valid, uploaded: false, etag: null, bytes: 0 };
    return this.#checkpoint(handle);
  }

  /**
   * Checkpoints (if dirty) and closes a tenant, after the calls using it finish. On failure the
   * tenant stays resident and the error is thrown ({@link UploadFailedError},
   * {@link TenantConflictError}). Evicting a tenant that is not resident does nothing.
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

  /** Every tenant that has an object in storage (optionally of one org), ordered by object key. */
  async list(options: { orgId?: string } = {}): Promise<TenantListing[]> {
    if (options.orgId !== undefined) TenantKey.org(options.orgId).validate();
    const prefix = options.orgId === undefined ? "" : `${options.orgId}/`;
    const found: TenantListing[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#objects.list(prefix, cursor === undefined ? {} : { cursor });
      for (const object of page.objects) {
        const key = TenantKey.fromObjectKey(object.key);
        if (key) found.push({ key, size: object.size, etag: object.etag, lastModified: object.lastModified });
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    return found;
  }

  /** What the store and object storage know about one tenant. */
  async inspect(key: TenantKey | TenantKeyInit): Promise<TenantInfo> {
    const valid = validKey(key);
    const handle = this.#resident.get(valid.toString());
    const live = handle !== undefined && handle.state !== "closed";
    return {
      key: valid,
      objectKey: valid.objectKey(),
      localPath: valid.localPath(this.cacheRoot),
      resident: live,
      leases: live ? handle.leases : 0,
      dirtyChanges: live ? handle.dirtyChanges() : 0,
      etag: live ? handle.etag : null,
      object: await this.#objects.head(valid.objectKey()),
    };
  }

  /**
   * Tenant files in the local cache, with what the cache recorded about them (`state.open`
   * true and the tenant not resident: a crashed or failed-to-close store left it, and the next
   * `get` adopts it and uploads it at its next checkpoint).
   */
  async listCached(): Promise<CachedTenant[]> {
    return scanCache(this.cacheRoot);
  }

  /**
   * Evicts every unleased tenant idle for `idleTtlMs` (the reaper runs this every
   * `idleTtlMs / 2`). Each eviction runs on its own; failures go to `onReapFailure` and the
   * tenant stays resident for the next pass. Does nothing when `idleTtlMs` is 0.
   */
  async reap(): Promise<PassResult> {
    if (this.#idleTtlMs === 0 || this.#closing !== undefined || this.#reaping) return { done: 0, failed: 0 };
    this.#reaping = true;
    try {
      const now = this.#clock.now();
      const idle = [...this.#resident.values()].filter(
        (h) => h.state === "open" && h.leases === 0 && now - h.lastAccess >= this.#idleTtlMs,
      );
      return await this.#pass(idle, (h) => this.#retire(h, false));
    } finally {
      this.#reaping = false;
    }
  }

  /**
   * Checkpoints every tenant with `checkpointWrites` changes, or with any change and no
   * checkpoint for `checkpointIntervalMs` (a timer runs this every `checkpointIntervalMs / 2`;
   * failed uploads are retried here). Failures go to `onReapFailure`.
   */
  async checkpointDue(): Promise<PassResult> {
    if (this.#closing !== undefined || this.#ticking) return { done: 0, failed: 0 };
    this.#ticking = true;
    try {
      const now = this.#clock.now();
      const due = [...this.#resident.values()].filter((h) => {
        if (h.state !== "open" || h.flushLock.locked) return false;
        const dirty = h.dirtyChanges();
        const interval = this.#checkpointIntervalMs > 0 && now - h.lastFlush >= this.#checkpointIntervalMs;
        return dirty > 0 && (dirty >= this.#checkpointWrites || interval);
      });
      return await this.#pass(due, async (h) => (await this.#checkpoint(h)).uploaded);
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Stops the timers, waits for running calls, checkpoints and closes every tenant. Tenants that
   * could not be uploaded are listed in one {@link TenantCloseError}; their local files stay in
   * the cache, and a store opened later on the same `cacheRoot` adopts and uploads them.
   * Idempotent: later calls return the first call's outcome.
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
    for (const timer of this.#timers) clearInterval(timer);
    await Promise.allSettled([...this.#loading.values()].map((l) => l.promise));
    await Promise.allSettled([...this.#retiring.values()]);
    const handles = [...this.#resident.values()].filter((h) => h.state === "open");
    const failures: TenantFailure[] = [];
    await forEachLimit(handles, PASS_CONCURRENCY, async (h) => {
      try {
        await this.#retire(h, true);
      } catch (error) {
        failures.push({ key: h.key, error });
        if (h.state !== "closed") {
          h.state = "closed";
          this.#resident.delete(h.id);
          await h.db.close();
        }
      }
    });
    if (failures.length > 0) throw new TenantCloseError(handles.length - failures.length, handles.length, failures);
  }

  async #acquire(key: TenantKey): Promise<TenantHandle> {
    const id = key.toString();
    const enclosing = this.#context.getStore()?.get(id);
    if (enclosing !== undefined && enclosing.state !== "closed") {
      enclosing.acquire(this.#clock.now());
      return enclosing;
    }
    for (;;) {
      this.#assertOpen("tenants.get");
      const notice = this.#notices.get(id);
      if (notice !== undefined) {
        this.#notices.delete(id);
        throw notice;
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
      return loading.promise;
    }
  }

  #release(handle: TenantHandle, wrote: boolean, leased = true): void {
    if (leased) handle.release(this.#clock.now());
    if (!wrote || handle.state !== "open" || handle.flushLock.locked) return;
    // After a failed upload, writes do not hammer the backend; the timers and evictions retry.
    if (this.#clock.now() - handle.lastFailure < WRITE_RETRY_BACKOFF_MS) return;
    if (handle.dirtyChanges() >= this.#checkpointWrites) {
      this.#checkpoint(handle).catch((err) => this.#backgroundFailure(handle, err));
    }
  }

  async #load(key: TenantKey, loading: Loading): Promise<TenantHandle> {
    const id = key.toString();
    const path = key.localPath(this.cacheRoot);
    let handle: TenantHandle;
    try {
      await this.#budget.claim(path);
      const copy = await prepareLocalCopy(this.#objects, key, this.cacheRoot, this.#clock.now());
      const db = await this.#connect(path);
      handle = new TenantHandle(key, path, db, copy.etag, this.#clock.now(), copy.unflushed);
      await handle.noteSchema();
    } catch (err) {
      this.#loading.delete(id);
      throw err;
    }
    // Hand the lease to every caller that waited for this load in the same step that publishes it.
    this.#resident.set(id, handle);
    handle.leases += loading.waiters;
    this.#loading.delete(id);
    await this.#evictOverflow();
    return handle;
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
    await Promise.all(victims.map((v) => this.#retire(v, false).catch((err) => this.#backgroundFailure(v, err))));
  }

  /**
   * Checkpoints (if dirty) and closes a handle. New callers wait for the outcome; with
   * `waitForLeases` false a leased handle is left alone. On an upload failure the handle is
   * open again and the error is thrown; on a conflict the local copy is set aside.
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
      if (handle.conflict === undefined) {
        try {
          if (handle.dirtyChanges() > 0) await this.#checkpoint(handle);
        } catch (err) {
          if (handle.conflict === undefined) {
            handle.state = "open";
            throw err;
          }
        }
      }
      // Under the flush lock, so a checkpoint queued meanwhile finds the handle closed rather than closing.
      await handle.flushLock.run(async () => {
        await handle.db.close();
        handle.state = "closed";
      });
      if (handle.conflict !== undefined) {
        await moveAside(handle.path, handle.conflict.keptAt);
        throw handle.conflict;
      }
      await writeCacheState(handle.path, { etag: handle.etag, open: false });
      await this.#budget.keep(handle.path);
      return true;
    } finally {
      // The key stays taken until its files are settled, so no load races the cleanup.
      if (isClosed(handle) && this.#resident.get(handle.id) === handle) this.#resident.delete(handle.id);
      this.#retiring.delete(handle.id);
      settle();
    }
  }

  async #checkpoint(handle: TenantHandle): Promise<CheckpointResult> {
    return handle.flushLock.run(async () => {
      if (handle.conflict !== undefined) throw handle.conflict;
      if (handle.state === "closed" || handle.dirtyChanges() === 0) {
        return { key: handle.key, uploaded: false, etag: handle.etag, bytes: 0 };
      }
      await mkdir(tempDir(this.cacheRoot), { recursive: true, mode: 0o700 });
      const snapshot = join(tempDir(this.cacheRoot), `${randomUUID()}.snapshot`);
      try {
        const captured = handle.capture();
        await handle.db.snapshotTo(snapshot);
        const objectKey = handle.key.objectKey();
        let uploaded: { etag: string; bytes: number };
        try {
          uploaded = await uploadSnapshot(this.#objects, objectKey, snapshot, handle.etag, this.#multipartBytes);
        } catch (err) {
          if (isStoreError(err, "CONFLICT")) throw this.#conflict(handle, err);
          handle.lastFailure = this.#clock.now();
          throw new UploadFailedError(`checkpoint of tenant ${handle.key} failed: ${(err as Error)?.message ?? err}`, {
            op: "tenants.checkpoint",
            cause: err,
          });
        }
        handle.flushed(captured, uploaded.etag, this.#clock.now());
        await writeCacheState(handle.path, { etag: uploaded.etag, open: true });
        return { key: handle.key, uploaded: true, etag: uploaded.etag, bytes: uploaded.bytes };
      } finally {
        await rm(snapshot, { force: true });
      }
    });
  }

  #conflict(handle: TenantHandle, cause: unknown): TenantConflictError {
    const conflict = new TenantConflictError(handle.key, conflictPath(this.cacheRoot, handle.key, this.#clock.now()), {
      op: "tenants.checkpoint",
      cause,
    });
    handle.conflict = conflict;
    // Set the copy aside once its current users are done; a retirement already under way does it itself.
    if (handle.state === "open") {
      this.#retire(handle, true).catch((err) => {
        if (err !== conflict) this.#onFailure(handle.key, err);
      });
    }
    return conflict;
  }

  #backgroundFailure(handle: TenantHandle, error: unknown): void {
    if (error instanceof TenantConflictError) this.#notices.set(handle.id, error);
    this.#onFailure(handle.key, error);
  }

  async #pass(handles: TenantHandle[], work: (h: TenantHandle) => Promise<boolean>): Promise<PassResult> {
    let done = 0;
    let failed = 0;
    await forEachLimit(handles, PASS_CONCURRENCY, async (h) => {
      try {
        if (await work(h)) done += 1;
      } catch (err) {
        failed += 1;
        this.#backgroundFailure(h, err);
      }
    });
    return { done, failed };
  }

  #every(ms: number, fn: () => Promise<unknown>): void {
    // A pass reports per-tenant failures itself; anything else must not become an unhandled rejection.
    const tick = (): void => {
      fn().catch((err: unknown) => process.emitWarning(`tenant store background pass failed: ${String(err)}`));
    };
    const timer = setInterval(tick, Math.max(1, Math.floor(ms)));
    timer.unref();
    this.#timers.push(timer);
  }

  #assertOpen(op: string): void {
    if (this.#closing !== undefined) throw new ClosedError("tenant store is closed", { op });
  }
}
