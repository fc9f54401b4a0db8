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
  /** Gives the lease back; `wrote` asks the store to look at the dirty count. */
  release(handle: TenantHandle, wrote: boolean): void;
}

/**
 * The {@link Database} handed out by {@link TenantStore.get}: a view, not a connection. Every
 * call leases the tenant for its duration (a transaction for all of it, `iterate` until the
 * loop ends), so the store can never close the database under a call; between calls the
 * tenant may be evicted, and the next call transparently hydrates it again. `close()` ends
 * this view only; the tenant stays cached.
 */
export class TenantDatabase implements Database {
  readonly dialect = sqliteDialect;
  /** The tenant this view reaches. */
  readonly key: TenantKey;
  readonly #leaser: TenantLeaser;
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
      const result = await handle.db.run(sql, params);
      // DDL does not move the change counter; a statement that changed no rows may have been DDL.
      if (result.changes === 0) await handle.noteSchema();
      return result;
    } finally {
      this.#leaser.release(handle, true);
    }
  }

  async get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    const handle = await this.#acquire("sql.get");
    try {
      return await handle.db.get<T>(sql, params);
    } finally {
      this.#leaser.release(handle, true);
    }
  }

  async all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    const handle = await this.#acquire("sql.all");
    try {
      return await handle.db.all<T>(sql, params);
    } finally {
      this.#leaser.release(handle, true);
    }
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T> {
    const handle = await this.#acquire("sql.iterate");
    try {
      yield* handle.db.iterate<T>(sql, params, options);
    } finally {
      this.#leaser.release(handle, true);
    }
  }

  async transaction<T>(fn: (tx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const handle = await this.#acquire("sql.transaction");
    const snapshots = handle.snapshots;
    handle.transactions += 1;
    try {
      return await handle.db.transaction(fn, options);
    } finally {
      handle.transactions -= 1;
      // A snapshot taken while this transaction was open could not contain its writes.
      if (handle.snapshots !== snapshots) handle.mark(1);
      await handle.noteSchema().finally(() => this.#leaser.release(handle, true));
    }
  }

  async migrate(set: MigrationSet<Executor>): Promise<MigrationResult> {
    const handle = await this.#acquire("sql.migrate");
    try {
      const result = await handle.db.migrate(set);
      await handle.noteSchema();
      return result;
    } finally {
      this.#leaser.release(handle, true);
    }
  }

  /** Ends this view: later calls on it throw {@link ClosedError}. The tenant itself stays open in the store. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #acquire(op: string): Promise<TenantHandle> {
    if (this.#closed) return Promise.reject(new ClosedError(`view of tenant ${this.key} is closed`, { op }));
    return this.#leaser.acquire(this.key);
  }
}
