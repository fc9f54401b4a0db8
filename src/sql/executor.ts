import type { Dialect } from "./dialect.js";
import type { MigrationResult } from "./migration-runner.js";
import type { MigrationSet } from "./migration-set.js";

/**
 * A value that can be bound to a statement parameter. `boolean` binds as 1/0 on SQLite;
 * `Uint8Array` binds as BLOB / BYTEA; `bigint` binds as INTEGER / BIGINT.
 */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

/** Positional parameters, bound to `$1`, `$2`, ... in the statement text (both engines). */
export type SqlParams = readonly SqlValue[];

/** A result row: column name to value. Integers arrive as `number` (or `bigint` beyond 2^53), blobs as `Uint8Array`. */
export type Row = Record<string, unknown>;

/** What a write statement reports. */
export interface RunResult {
  /** Rows inserted, updated or deleted by the statement. */
  changes: number;
}

/** Options of {@link Executor.transaction}. */
export interface TransactionOptions {
  /**
   * Runs the transaction read-only: any statement that would write throws
   * {@link ReadOnlyError} and nothing is written. Default `false`.
   */
  readOnly?: boolean;
  /**
   * PostgreSQL isolation level. Default `"read committed"`. SQLite transactions are always
   * serializable (one writer), so SQLite ignores this option.
   */
  isolation?: "read committed" | "repeatable read" | "serializable";
}

/** Options of {@link Executor.iterate}. */
export interface IterateOptions {
  /** Rows fetched per round trip (PostgreSQL cursor) or per batch. Default 256. */
  batchSize?: number;
}

/**
 * Runs SQL. A {@link Database} is an executor, and so is the `tx` handed to a transaction
 * callback, so store methods accept either and join the caller's transaction when given one.
 *
 * Statements are written with `$1`, `$2`, ... placeholders, which SQLite and PostgreSQL both
 * parse natively; SQL that differs between engines is chosen with {@link Executor.dialect}.
 *
 * @example
 * ```ts
 * const row = await db.get<{ value: string }>("SELECT value FROM entries WHERE key = $1", ["a"]);
 * await db.transaction(async (tx) => {
 *   await tx.run("UPDATE counters SET n = n + 1 WHERE id = $1", [1]);
 *   await tx.run("INSERT INTO log(msg) VALUES ($1)", ["bumped"]);
 * });
 * ```
 */
export interface Executor {
  /** The engine's SQL differences (placeholders, upserts, locking clauses, types). */
  readonly dialect: Dialect;

  /**
   * Runs a statement that returns no rows you need and reports how many rows it changed.
   * Throws {@link ClosedError} after `close()`, {@link UniqueViolationError} /
   * {@link ConstraintError} on constraint failures, {@link BusyError} when locked out,
   * {@link ReadOnlyError} for a write in a read-only transaction.
   */
  run(sql: string, params?: SqlParams): Promise<RunResult>;

  /** Returns the first row, or `undefined` when there is none. Errors as {@link Executor.run}. */
  get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined>;

  /** Returns every row, in the order the statement produces them. Errors as {@link Executor.run}. */
  all<T = Row>(sql: string, params?: SqlParams): Promise<T[]>;

  /**
   * Streams rows without materialising the whole result. Breaking out of a `for await` loop
   * releases the cursor. On SQLite outside a transaction the rows come from a short-lived
   * read connection (a consistent snapshot); inside a transaction, or on `:memory:`, the rows
   * are fetched at once and then yielded.
   */
  iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T>;

  /**
   * Runs `fn` in a transaction and commits when the promise it returns resolves; if it
   * rejects, rolls back and rethrows the same error unchanged.
   *
   * Nested calls (on a transaction's `tx`) open a SAVEPOINT: an inner failure rolls back only
   * the inner work and rethrows; the outer transaction decides whether to commit. Nested calls
   * on one `tx` run one at a time. Calling the outer {@link Database} from inside its own
   * transaction would wait for itself; it throws {@link TransactionError} instead. Using `tx`
   * after `fn` settled throws {@link TransactionError}.
   */
  transaction<T>(fn: (tx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

/**
 * The options argument of a store method that can join the caller's transaction: pass the
 * `tx` of your transaction as `executor` and the method's statements commit or roll back with
 * your own writes. Without it the store uses its own database.
 *
 * @example
 * ```ts
 * await db.transaction(async (tx) => {
 *   await tx.run("INSERT INTO posts (id, cover) VALUES ($1, $2)", [id, key]);
 *   await claims.consumeMany([key], userId, { executor: tx });
 * });
 * ```
 */
export interface ExecutorOptions {
  /** Where the statements run. Default: the store's own database. */
  executor?: Executor;
}

/**
 * An open database: an {@link Executor} that also migrates and closes.
 * Obtain one with {@link openSqlite} or {@link openPostgres}.
 */
export interface Database extends Executor {
  /** `true` once {@link Database.close} was called. */
  readonly closed: boolean;

  /**
   * Applies the set's pending migrations, each in its own transaction together with its
   * record, safely when several processes migrate at once. Re-running is a no-op. Throws
   * {@link MigrationOutOfOrderError} when an applied migration was reordered or removed, and
   * rethrows a failing migration's error after the migrations before it stayed applied.
   */
  migrate(set: MigrationSet<Executor>): Promise<MigrationResult>;

  /** Closes every connection. Idempotent; later calls on the database throw {@link ClosedError}. */
  close(): Promise<void>;
}
