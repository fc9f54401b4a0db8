import { Mutex } from "../internal/mutex.js";
import type { SqliteDatabase } from "../sql/index.js";
import type { TenantConflictError } from "./tenant-conflict-error.js";
import type { TenantKey } from "./tenant-key.js";

/** `open`: serving; `retiring`: being flushed and closed (new users wait); `closed`: gone from the cache. */
export type HandleState = "open" | "retiring" | "closed";

/**
 * One resident tenant database and its bookkeeping. Internal to the store: users only ever
 * see it through a {@link TenantDatabase}, which leases it per call.
 */
export class TenantHandle {
  readonly key: TenantKey;
  readonly id: string;
  readonly path: string;
  readonly db: SqliteDatabase;
  /** Generation of the object this copy derives from (`null`: never uploaded). */
  etag: string | null;
  state: HandleState = "open";
  /** Calls and `withTenant` callbacks currently using the handle; a leased handle is never closed. */
  leases = 0;
  /** Transactions in progress through the store's views. */
  transactions = 0;
  /** Bumped on every snapshot; a transaction that spans one marks the tenant dirty when it ends. */
  snapshots = 0;
  lastAccess: number;
  lastFlush: number;
  /** When the last upload attempt failed (`-Infinity`: never), to hold back write-count retries. */
  lastFailure = Number.NEGATIVE_INFINITY;
  /** Set when a checkpoint lost the generation check; the handle is then retired and kept aside. */
  conflict: TenantConflictError | undefined;
  /** Serializes checkpoints of this tenant (never held across other tenants' work). */
  readonly flushLock = new Mutex();
  #flushedChanges: number;
  #marked: number;
  #schemaVersion = -1;
  #idle: (() => void)[] = [];

  constructor(key: TenantKey, path: string, db: SqliteDatabase, etag: string | null, now: number, unflushed: boolean) {
    this.key = key;
    this.id = key.toString();
    this.path = path;
    this.db = db;
    this.etag = etag;
    this.lastAccess = now;
    this.lastFlush = now;
    this.#flushedChanges = db.totalChanges();
    this.#marked = unflushed ? 1 : 0;
  }

  /** Changes since the last successful checkpoint: rows written through the writer plus explicit marks. */
  dirtyChanges(): number {
    if (this.state === "closed") return 0;
    return this.db.totalChanges() - this.#flushedChanges + this.#marked;
  }

  mark(n: number): void {
    this.#marked += n;
  }

  /** Counts a schema change (DDL does not move SQLite's change counter). */
  async noteSchema(): Promise<void> {
    const row = await this.db.get<{ schema_version: number }>("PRAGMA schema_version");
    const version = row?.schema_version ?? 0;
    if (this.#schemaVersion !== -1 && version !== this.#schemaVersion) this.#marked += 1;
    this.#schemaVersion = version;
  }

  /** Records what a snapshot captured, to be committed by {@link TenantHandle.flushed} once uploaded. */
  capture(): { changes: number; marked: number } {
    this.snapshots += 1;
    return { changes: this.db.totalChanges(), marked: this.#marked };
  }

  flushed(captured: { changes: number; marked: number }, etag: string, now: number): void {
    this.#flushedChanges = captured.changes;
    this.#marked -= captured.marked;
    this.etag = etag;
    this.lastFlush = now;
  }

  acquire(now: number): void {
    this.leases += 1;
    this.lastAccess = now;
  }

  release(now: number): void {
    this.leases -= 1;
    this.lastAccess = now;
    if (this.leases === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  /** Resolves once nobody leases the handle. */
  whenIdle(): Promise<void> {
    if (this.leases === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
