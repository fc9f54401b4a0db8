import { ClosedError, InvalidArgumentError } from "../errors.js";
import { booleanOption, databaseInstance, positiveInteger } from "../internal/option-checks.js";
import {
  type Database,
  type Executor,
  isRetryableTransactionError,
  MigrationSet,
  type TransactionOptions,
} from "../sql/index.js";
import { SqlTx } from "./sql-tx.js";
import type { Store, StoreMigrationResult, Tx } from "./store.js";
import { runStoreMigrations } from "./store-migrations.js";

/** The kv table, created through the sql module's migration runner. */
export const kvTableMigrations = new MigrationSet<Executor>("kv").add({
  id: "kv/001-table",
  async up(tx) {
    const blob = tx.dialect.blobType;
    await tx.run(
      `CREATE TABLE kv (ns ${blob} NOT NULL, key ${blob} NOT NULL, value ${blob} NOT NULL, PRIMARY KEY (ns, key))${tx.dialect.keyOrderedTable}`,
    );
  },
});

/** Options of {@link SqlStore.open}. */
export interface SqlStoreOptions {
  /** The database holding the `kv` table (SQLite, PostgreSQL, a tenant database). Required by {@link SqlStore.open}. */
  database?: Database;
  /** Create the `kv` table (sql migration set `"kv"`) on open. Default `true`. */
  migrate?: boolean;
  /** Close the database when the store closes. Default `false` (the caller owns it). */
  closeDatabase?: boolean;
  /**
   * Where writers run side by side (PostgreSQL): attempts of an `update` that loses a serialization
   * check, with a jittered exponential back-off between them (up to 2^attempt ms, at most 500 ms). Default 50.
   */
  maxAttempts?: number;
}

/**
 * The `sqlite` and `postgres` drivers: one `kv(ns, key, value)` table over a foundation
 * {@link Database}. On PostgreSQL `update` runs SERIALIZABLE and is retried (with jitter) when
 * it loses a serialization check, and `view` runs READ ONLY at REPEATABLE READ (one snapshot,
 * never a serialization failure). SQLite transactions are serializable by construction.
 */
export class SqlStore implements Store {
  readonly #db: Database;
  readonly #closeDatabase: boolean;
  readonly #maxAttempts: number;
  readonly #viewOptions: TransactionOptions;
  readonly #updateOptions: TransactionOptions;
  #closed = false;
  #closing: Promise<void> = Promise.resolve();
  readonly #admitted = new Set<Promise<unknown>>();

  /**
   * Validates `options` ({@link InvalidArgumentError} naming a bad one), creates the `kv` table
   * unless `migrate: false`, and returns the store. Kv migrations (your data's) are separate:
   * call {@link Store.migrate}.
   *
   * @example
   * ```ts
   * const store = await SqlStore.open({ database: await openSqlite("./app.db"), closeDatabase: true });
   * ```
   */
  static async open(options: SqlStoreOptions): Promise<SqlStore> {
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError("SqlStore options must be an object", { op: "kv.open" });
    }
    const database = options.database;
    if (database === undefined || database === null) {
      throw new InvalidArgumentError("database is required (a storeroom Database)", { op: "kv.open" });
    }
    const migrate = booleanOption(options.migrate, "migrate", "kv.open", true);
    const store = new SqlStore(database, options);
    if (migrate) await database.migrate(kvTableMigrations);
    return store;
  }

  /** A store over `db`, whose `kv` table must exist; prefer {@link SqlStore.open}. `options.database` is ignored. */
  constructor(db: Database, options: SqlStoreOptions = {}) {
    const maxAttempts = positiveInteger(options.maxAttempts, "maxAttempts", "kv.open", 50);
    databaseInstance(db, "database", "kv.open");
    if (db.dialect === null || typeof db.dialect !== "object") {
      throw new InvalidArgumentError("database must be a storeroom Database (it has no dialect)", { op: "kv.open" });
    }
    this.#db = db;
    this.#closeDatabase = booleanOption(options.closeDatabase, "closeDatabase", "kv.open", false);
    // Where writers run side by side, views read one snapshot and updates are serializable
    // and retried; with one writer at a time transactions are serializable by construction.
    const concurrent = db.dialect.concurrentWriters;
    this.#maxAttempts = concurrent ? maxAttempts : 1;
    this.#viewOptions = concurrent ? { readOnly: true, isolation: "repeatable read" } : { readOnly: true };
    this.#updateOptions = concurrent ? { isolation: "serializable" } : {};
  }

  migrate(set?: MigrationSet<Tx>): Promise<StoreMigrationResult> {
    if (this.#closed) return Promise.reject(closed("kv.migrate"));
    return this.#admit(() => runStoreMigrations(this, set));
  }

  view<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closed("kv.view"));
    if (typeof fn !== "function") return Promise.reject(noCallback("kv.view"));
    return this.#admit(() => this.#db.transaction((tx) => fn(new SqlTx(tx, false)), this.#viewOptions));
  }

  update<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closed("kv.update"));
    if (typeof fn !== "function") return Promise.reject(noCallback("kv.update"));
    return this.#admit(async () => {
      // An admitted update keeps its retries even when close() is called meanwhile.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#db.transaction((tx) => fn(new SqlTx(tx, true)), this.#updateOptions);
        } catch (err) {
          if (attempt >= this.#maxAttempts || !isRetryableTransactionError(err)) throw err;
          await sleep(retryDelayMs(attempt));
        }
      }
    });
  }

  ping(): Promise<void> {
    if (this.#closed) return Promise.reject(closed("kv.ping"));
    return this.#admit(async () => {
      await this.#db.get("SELECT 1 AS ok");
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      // The database may be the caller's and stay open: close() still means no kv work is left running.
      await Promise.allSettled([...this.#admitted]);
      if (this.#closeDatabase) await this.#db.close();
    })();
    return this.#closing;
  }

  /** Runs admitted work and tracks it until it settles, so close() can wait for it. */
  #admit<T>(work: () => Promise<T>): Promise<T> {
    const running = work();
    this.#admitted.add(running);
    const forget = () => this.#admitted.delete(running);
    running.then(forget, forget);
    return running;
  }
}

function closed(op: string): ClosedError {
  return new ClosedError("store is closed", { op });
}

function noCallback(op: string): InvalidArgumentError {
  return new InvalidArgumentError(`${op === "kv.view" ? "view" : "update"} needs a callback`, { op });
}

/**
 * The pause before attempt `attempt + 1` of an update: exponential back-off with full jitter,
 * up to 2^attempt ms and at most 500 ms. Writers that keep losing step out of each other's way,
 * so a hot key's losers do not keep colliding until their attempts run out (a back-off that
 * grew by 2 ms up to 25 ms let an update under 8-way contention on a loaded machine fail
 * after 50 attempts).
 */
function retryDelayMs(attempt: number): number {
  return Math.random() * Math.min(2 ** attempt, 500);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** @deprecated Use `SqlStore.open({ database, ...options })`. */
export function openSqlStore(db: Database, options: SqlStoreOptions = {}): Promise<SqlStore> {
  return SqlStore.open({ ...options, database: db });
}
