import { ClosedError } from "../errors.js";
import type {
  Database,
  Executor,
  IterateOptions,
  MigrationResult,
  MigrationSet,
  Row,
  RunResult,
  SqlParams,
  TransactionOptions,
} from "../sql/index.js";
import { sqliteDialect } from "../sql/index.js";
import type { TenantHandle } from "./tenant-handle.js";
import type { TenantKey } from "./tenant-key.js";

/** How a view reaches its tenant: the store's lease protocol. */
export interface TenantLeaser {
  /** Resolves the tenant (hydrating it when it is not resident) with one lease taken. */
  acquire(key: TenantKey): Promise<TenantHandle>;
  /** Gives the lease back. */
  release(handle: TenantHandle): void;
}

/**
 * The {@link Database} handed out by {@link TenantStore.get}: a view, not a connection. Every
 * call leases the tenant for its duration (a transaction for all of it, `iterate` until the
 * loop ends), so the store can never close the database under a call; between calls the
 * tenant may be evicted, and the next call transparently hydrates it again. `close()` ends
 * this view only; the tenant stays cached.
 *
 * Writes are acknowledged at their commit boundary (`run`, `transaction`, `migrate`, and a
 * `get`/`all` that wrote): in `sync` durability the promise resolves only once the commit is
 * published to object storage (or rejects with {@link TenantConflictError} when another writer
 * took the tenant); in `async` durability at local commit.
 */
export class TenantDatabase implements Database {
  readonly dialect = sqliteDialect;
  /** The tenant this view reaches. */
  readonly key: TenantKey;
  readonly #leaser: TenantLeaser;
  /** Migration sets applied through this view, replayed on every copy of the tenant it reaches. */
  readonly #migrations: MigrationSet<Executor>[] = [];
  /** The copy the migrations were last applied to. */
  #migrated: TenantHandle | undefined;
  #closed = false;

  constructor(key: TenantKey, leaser: TenantLeaser) {
    this.key = key;
    this.#leaser = leaser;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async run(sql: string, params?: SqlParams): Promise<RunResult> {
    const handle = await this.#acquire("sql.run");
    try {
      const before = await handle.mark();
      const result = await handle.db.run(sql, params);
      await handle.wrote(before, result.changes > 0);
      return result;
    } finally {
      this.#leaser.release(handle);
    }
  }

  async get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    const handle = await this.#acquire("sql.get");
    try {
      const changes = handle.db.totalChanges();
      const row = await handle.db.get<T>(sql, params);
      // A statement with RETURNING writes through get/all: its commit is acknowledged like any other.
      if (handle.db.totalChanges() !== changes) await handle.wrote(undefined, true);
      return row;
    } finally {
      this.#leaser.release(handle);
    }
  }

  async all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    const handle = await this.#acquire("sql.all");
    try {
      const changes = handle.db.totalChanges();
      const rows = await handle.db.all<T>(sql, params);
      if (handle.db.totalChanges() !== changes) await handle.wrote(undefined, true);
      return rows;
    } finally {
      this.#leaser.release(handle);
    }
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T> {
    const handle = await this.#acquire("sql.iterate");
    try {
      yield* handle.db.iterate<T>(sql, params, options);
    } finally {
      this.#leaser.release(handle);
    }
  }

  async transaction<T>(fn: (tx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const handle = await this.#acquire("sql.transaction");
    try {
      if (options?.readOnly === true) return await handle.db.transaction(fn, options);
      const before = await handle.mark();
      const result = await handle.db.transaction(fn, options);
      await handle.wrote(before, false);
      return result;
    } finally {
      this.#leaser.release(handle);
    }
  }

  /**
   * Applies `set` to the tenant and remembers it: should the tenant be evicted and come back as
   * a fresh copy (a tenant never published holds only its schema, which is not uploaded), the
   * view applies its migration sets again before its next call.
   */
  async migrate(set: MigrationSet<Executor>): Promise<MigrationResult> {
    const handle = await this.#acquire("sql.migrate");
    try {
      const result = await handle.db.migrate(set);
      if (!this.#migrations.includes(set)) this.#migrations.push(set);
      this.#migrated = handle;
      // Schema set-up alone does not make a never-published tenant worth publishing.
      await handle.wrote(undefined, false);
      return result;
    } finally {
      this.#leaser.release(handle);
    }
  }

  /** Ends this view: later calls on it throw {@link ClosedError}. The tenant itself stays open in the store. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  async #acquire(op: string): Promise<TenantHandle> {
    if (this.#closed) throw new ClosedError(`view of tenant ${this.key} is closed`, { op });
    const handle = await this.#leaser.acquire(this.key);
    if (this.#migrations.length === 0 || this.#migrated === handle) return handle;
    try {
      for (const set of this.#migrations) await handle.db.migrate(set);
      await handle.wrote(undefined, false);
      this.#migrated = handle;
      return handle;
    } catch (err) {
      this.#leaser.release(handle);
      throw err;
    }
  }
}
