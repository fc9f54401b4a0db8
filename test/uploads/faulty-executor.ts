import type { Executor, IterateOptions, Row, RunResult, SqlParams, TransactionOptions } from "../../src/sql/index.js";

/**
 * Wraps a real {@link Executor} (and the `tx` of its transactions) and throws `fail(sql)`'s
 * error, when it returns one, instead of running the statement.
 */
export class FaultyExecutor implements Executor {
  readonly #inner: Executor;
  readonly #fail: (sql: string) => Error | undefined;

  constructor(inner: Executor, fail: (sql: string) => Error | undefined) {
    this.#inner = inner;
    this.#fail = fail;
  }

  get dialect() {
    return this.#inner.dialect;
  }

  #check(sql: string): void {
    const err = this.#fail(sql);
    if (err !== undefined) throw err;
  }

  async run(sql: string, params?: SqlParams): Promise<RunResult> {
    this.#check(sql);
    return this.#inner.run(sql, params);
  }

  async get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    this.#check(sql);
    return this.#inner.get<T>(sql, params);
  }

  async all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    this.#check(sql);
    return this.#inner.all<T>(sql, params);
  }

  iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T> {
    this.#check(sql);
    return this.#inner.iterate<T>(sql, params, options);
  }

  transaction<T>(fn: (tx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.#inner.transaction((tx) => fn(new FaultyExecutor(tx, this.#fail)), options);
  }
}
