import type { Executor, Row, SqlParams } from "./executor.js";

/**
 * What the `tx` of an engine that runs statements synchronously (SQLite) offers beside
 * {@link Executor}: a point read without a promise, for hot paths where one promise hop per
 * statement is a measurable share of the work. Find it with {@link asSyncReader}; code that
 * must also run on PostgreSQL keeps an `await tx.get(...)` fallback.
 *
 * @example
 * ```ts
 * const reader = asSyncReader(tx);
 * const row = reader ? reader.getNow(sql, params) : await tx.get(sql, params);
 * ```
 */
export interface SyncReader {
  /**
   * {@link Executor.get}, returning the first row (or `undefined`) directly. Throws what `get`
   * rejects with, {@link TransactionError} once the transaction's callback settled, and
   * {@link TransactionError} while a nested transaction of this `tx` is open (where `get`
   * would wait for it).
   */
  getNow<T = Row>(sql: string, params?: SqlParams): T | undefined;
}

/** The {@link SyncReader} side of `executor`, or `undefined` when its engine is asynchronous. */
export function asSyncReader(executor: Executor): SyncReader | undefined {
  return typeof (executor as Partial<SyncReader>).getNow === "function"
    ? (executor as Executor & SyncReader)
    : undefined;
}
