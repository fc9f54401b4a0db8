import type { SqliteDatabase } from "../sql/index.js";
import type { TenantKey } from "./tenant-key.js";
import type { TenantLease } from "./tenant-ownership.js";
import type { TenantReplica } from "./tenant-replica.js";

/** `open`: serving; `retiring`: being published and closed (new users wait); `closed`: gone from the cache. */
export type HandleState = "open" | "retiring" | "closed";

/**
 * One resident tenant database, its replica and its bookkeeping. Internal to the store: users
 * only ever see it through a {@link TenantDatabase}, which leases it per call.
 */
export class TenantHandle {
  readonly key: TenantKey;
  readonly id: string;
  readonly path: string;
  readonly db: SqliteDatabase;
  readonly replica: TenantReplica;
  state: HandleState = "open";
  /** Calls and `withTenant` callbacks currently using the handle; a leased handle is never closed. */
  leases = 0;
  lastAccess: number;
  /** When the publication timer last started publishing this tenant (the store's spacing clock); never: -Infinity. */
  publishedAt = Number.NEGATIVE_INFINITY;
  /** The ownership lease the tenant was loaded under (a store with `ownership`); given back when it closes. */
  lease: TenantLease | undefined;
  #idle: (() => void)[] = [];

  constructor(key: TenantKey, path: string, db: SqliteDatabase, replica: TenantReplica, now: number) {
    this.key = key;
    this.id = key.toString();
    this.path = path;
    this.db = db;
    this.replica = replica;
    this.lastAccess = now;
  }

  /**
   * A marker of the database's content before a write, when the replica needs to know whether
   * the write changed anything (a tenant never published publishes only real content).
   */
  async mark(): Promise<string | undefined> {
    if (this.replica.manifest !== null || this.replica.hasContent) return undefined;
    const row = await this.db.get<{ schema_version: number }>("PRAGMA schema_version");
    return `${this.db.totalChanges()}:${row?.schema_version ?? 0}`;
  }

  /** Hands a committed write to the replica (which, in `sync` mode, resolves once it is published). */
  async wrote(before: string | undefined, changed: boolean): Promise<void> {
    if (!changed && before !== undefined) changed = before !== (await this.mark());
    await this.replica.afterWrite(changed);
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
