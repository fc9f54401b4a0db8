import type { AsyncLocalStorage } from "node:async_hooks";
import { ReadOnlyError, TransactionError } from "../../errors.js";
import { Mutex } from "../../internal/mutex.js";
import { sqliteDialect } from "../dialect.js";
import type { Executor, IterateOptions, Row, RunResult, SqlParams, TransactionOptions } from "../executor.js";
import type { SyncReader } from "../sync-reader.js";
import type { SlowWaitWarning } from "./slow-wait-warning.js";
import type { PreparedStatement, SqliteConnection } from "./sqlite-connection.js";

/**
 * The async context a transaction callback runs in, present only with
 * `detectSelfDeadlock`: it lets calls that would wait for themselves throw instead.
 */
export type TransactionContext = AsyncLocalStorage<SqliteTransaction>;

/**
 * The `tx` of a SQLite transaction or savepoint. Statements run synchronously on the
 * connection the transaction owns until it settles. While a nested transaction is open,
 * statements on this `tx` wait for it to finish, so they never land inside its savepoint.
 */
export class SqliteTransaction implements Executor, SyncReader {
  readonly dialect = sqliteDialect;
  readonly #conn: SqliteConnection;
  readonly #context: TransactionContext | undefined;
  readonly #warning: SlowWaitWarning;
  readonly #parent: SqliteTransaction | undefined;
  readonly #readOnly: boolean;
  readonly #depth: number;
  // Allocated on the first nested transaction; most transactions never nest.
  #children: Mutex | undefined;
  #active = true;

  constructor(
    conn: SqliteConnection,
    context: TransactionContext | undefined,
    warning: SlowWaitWarning,
    parent: SqliteTransaction | undefined,
    readOnly: boolean,
  ) {
    this.#conn = conn;
    this.#context = context;
    this.#warning = warning;
    this.#parent = parent;
    this.#readOnly = readOnly;
    this.#depth = parent === undefined ? 0 : parent.#depth + 1;
  }

  /** False once the callback settled. */
  get active(): boolean {
    return this.#active;
  }

  run(sql: string, params?: SqlParams): Promise<RunResult> {
    if (this.#active && this.#children?.locked !== true) {
      try {
        return Promise.resolve(this.#conn.runPrepared(this.#writable(sql), params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#call(() => this.#conn.runPrepared(this.#writable(sql), params));
  }

  get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    if (this.#active && this.#children?.locked !== true) {
      try {
        return Promise.resolve(this.#conn.getPrepared<T>(this.#writable(sql), params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#call(() => this.#conn.getPrepared<T>(this.#writable(sql), params));
  }

  getNow<T = Row>(sql: string, params?: SqlParams): T | undefined {
    this.#assertActive();
    if (this.#children?.locked === true) {
      throw new TransactionError("a nested transaction of this tx is open: await it before reading synchronously", {
        op: "sql.get",
      });
    }
    return this.#conn.getPrepared<T>(this.#writable(sql), params);
  }

  all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    if (this.#active && this.#children?.locked !== true) {
      try {
        return Promise.resolve(this.#conn.allPrepared<T>(this.#writable(sql), params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#call(() => this.#conn.allPrepared<T>(this.#writable(sql), params));
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, _options?: IterateOptions): AsyncIterableIterator<T> {
    // The connection cannot run other statements while a cursor is open on it, and the
    // transaction may need it between rows, so rows inside a transaction are fetched at once.
    yield* await this.all<T>(sql, params);
  }

  async transaction<T>(fn: (tx: Executor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#assertActive();
    this.#assertNotInsideChild("transaction");
    this.#children ??= new Mutex();
    await this.#warning.acquire(this.#children);
    try {
      this.#assertActive();
      return await runSqliteTransaction(this.#conn, this.#context, this.#warning, {
        parent: this,
        readOnly: this.#readOnly || options.readOnly === true,
        fn,
      });
    } finally {
      this.#children.release();
    }
  }

  /**
   * Waits for nested transactions started without `await` before the outer one commits;
   * `undefined` (nothing to wait for) on the common path, to spare a microtask.
   */
  settle(): Promise<void> | undefined {
    const children = this.#children;
    if (children === undefined || !children.locked) return undefined;
    return children.acquire().then(() => children.release());
  }

  finish(): void {
    this.#active = false;
  }

  get depth(): number {
    return this.#depth;
  }

  isWithin(scope: SqliteTransaction): boolean {
    for (let s: SqliteTransaction | undefined = this; s !== undefined; s = s.#parent) if (s === scope) return true;
    return false;
  }

  #call<T>(fn: () => T): Promise<T> {
    try {
      this.#assertActive();
      const children = this.#children;
      if (children === undefined || !children.locked) return Promise.resolve(fn());
      this.#assertNotInsideChild("statement");
      return this.#warning.acquire(children).then(() => {
        try {
          this.#assertActive();
          return fn();
        } finally {
          children.release();
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #assertActive(): void {
    if (!this.#active) {
      throw new TransactionError("transaction already finished: use the tx only inside its callback", {
        op: "sql.transaction",
      });
    }
  }

  #assertNotInsideChild(what: string): void {
    const current = this.#context?.getStore();
    if (current !== undefined && current !== this && current.active && current.isWithin(this)) {
      throw new TransactionError(
        `a ${what} on an outer transaction was called from inside a nested one; use the nested tx instead`,
        { op: "sql.transaction" },
      );
    }
  }

  /** The prepared statement, refused when it would write inside a read-only transaction. */
  #writable(sql: string): PreparedStatement {
    const p = this.#conn.prepare(sql);
    if (this.#readOnly && !p.readonly) {
      throw new ReadOnlyError("cannot write inside a read-only transaction", { op: "sql.run" });
    }
    return p;
  }
}

/** What {@link runSqliteTransaction} opens: a top-level transaction or, under `parent`, a savepoint. */
export interface SqliteTransactionScope<T> {
  parent: SqliteTransaction | undefined;
  readOnly: boolean;
  fn: (tx: Executor) => Promise<T>;
  /** What the caller holds for this transaction (the writer gate, a snapshot connection), released once it committed or rolled back. */
  lease?: { release(): void };
}

/**
 * Opens a transaction (or savepoint) on `conn`, runs `fn` (in its async context when there
 * is one), commits or rolls back, and then releases `lease`. `fn`'s error is rethrown
 * unchanged. BEGIN, COMMIT and friends go through the statement cache, so they are parsed
 * once per connection. Releasing the caller's lease here spares the caller an async layer
 * of its own, which measured as a tenth of a short read transaction.
 */
export async function runSqliteTransaction<T>(
  conn: SqliteConnection,
  context: TransactionContext | undefined,
  warning: SlowWaitWarning,
  scope: SqliteTransactionScope<T>,
): Promise<T> {
  const { parent, readOnly, fn, lease } = scope;
  const tx = new SqliteTransaction(conn, context, warning, parent, readOnly);
  // Only savepoints need a name; a top-level transaction should not pay for building one.
  const savepoint = parent === undefined ? "" : `storeroom_sp${tx.depth}`;
  try {
    // BEGIN IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading.
    conn.control(
      parent !== undefined ? `SAVEPOINT ${savepoint}` : readOnly ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE",
      "sql.begin",
    );
  } catch (err) {
    lease?.release();
    throw err;
  }
  let result: T;
  try {
    result = await (context === undefined ? fn(tx) : context.run(tx, () => fn(tx)));
    const settling = tx.settle();
    if (settling !== undefined) await settling;
  } catch (err) {
    tx.finish();
    try {
      if (parent !== undefined) {
        conn.control(`ROLLBACK TO ${savepoint}`, "sql.rollback");
        conn.control(`RELEASE ${savepoint}`, "sql.rollback");
      } else if (conn.inTransaction) conn.control("ROLLBACK", "sql.rollback");
    } finally {
      lease?.release();
    }
    throw err;
  }
  tx.finish();
  try {
    conn.control(parent !== undefined ? `RELEASE ${savepoint}` : "COMMIT", "sql.commit");
  } catch (err) {
    if (parent === undefined && conn.inTransaction) conn.control("ROLLBACK", "sql.rollback");
    throw err;
  } finally {
    lease?.release();
  }
  return result;
}
