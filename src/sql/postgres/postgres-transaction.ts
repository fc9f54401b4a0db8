import { TransactionError, UnsupportedError } from "../../errors.js";
import { Mutex } from "../../internal/mutex.js";
import { postgresDialect } from "../dialect.js";
import type { Executor, IterateOptions, Row, RunResult, SqlParams, TransactionOptions } from "../executor.js";
import { type PgClient, query } from "./postgres-client.js";
import { iterateWithCursor } from "./postgres-cursor.js";

/**
 * The `tx` of a PostgreSQL transaction or savepoint: every statement runs on the one client
 * checked out for the transaction. While a nested transaction is open, statements on this
 * `tx` from other async branches wait for it.
 */
export class PostgresTransaction implements Executor {
  readonly dialect = postgresDialect;
  readonly #client: PgClient;
  readonly #depth: number;
  readonly #readOnly: boolean;
  readonly #children = new Mutex();
  #active = true;
  #cursors = 0;

  constructor(client: PgClient, depth: number, readOnly: boolean) {
    this.#client = client;
    this.#depth = depth;
    this.#readOnly = readOnly;
  }

  async run(sql: string, params?: SqlParams): Promise<RunResult> {
    const { rowCount } = await this.#call(() => query(this.#client, sql, params, "sql.run"));
    return { changes: rowCount };
  }

  async get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    const { rows } = await this.#call(() => query<T>(this.#client, sql, params, "sql.get"));
    return rows[0];
  }

  async all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    const { rows } = await this.#call(() => query<T>(this.#client, sql, params, "sql.all"));
    return rows;
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T> {
    this.#assertActive();
    yield* iterateWithCursor<T>(
      this.#client,
      `storeroom_cursor_${this.#depth}_${this.#cursors++}`,
      sql,
      params,
      options,
    );
  }

  async transaction<T>(fn: (tx: Executor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#assertActive();
    if (options.readOnly === true && !this.#readOnly) {
      throw new UnsupportedError("PostgreSQL cannot make a savepoint read-only; open a read-only transaction instead", {
        op: "sql.transaction",
      });
    }
    await this.#children.acquire();
    try {
      this.#assertActive();
      return await runPostgresTransaction(this.#client, this.#depth + 1, this.#readOnly, fn);
    } finally {
      this.#children.release();
    }
  }

  /** Waits for nested transactions started without `await` before the outer one commits. */
  async settle(): Promise<void> {
    await this.#children.run(() => undefined);
  }

  finish(): void {
    this.#active = false;
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    this.#assertActive();
    if (this.#children.locked) await this.#children.run(() => undefined);
    this.#assertActive();
    return fn();
  }

  #assertActive(): void {
    if (!this.#active) {
      throw new TransactionError("transaction already finished: use the tx only inside its callback", {
        op: "sql.transaction",
      });
    }
  }
}

/** BEGIN (or SAVEPOINT at depth > 0), run `fn`, COMMIT or ROLLBACK; `fn`'s error is rethrown unchanged. */
export async function runPostgresTransaction<T>(
  client: PgClient,
  depth: number,
  readOnly: boolean,
  fn: (tx: Executor) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const savepoint = `storeroom_sp${depth}`;
  const begin =
    depth > 0
      ? `SAVEPOINT ${savepoint}`
      : `BEGIN ISOLATION LEVEL ${(options.isolation ?? "read committed").toUpperCase()}${readOnly ? " READ ONLY" : ""}`;
  await query(client, begin, undefined, "sql.begin");
  const tx = new PostgresTransaction(client, depth, readOnly);
  let result: T;
  try {
    result = await fn(tx);
    await tx.settle();
  } catch (err) {
    tx.finish();
    await query(
      client,
      depth > 0 ? `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}` : "ROLLBACK",
      undefined,
      "sql.rollback",
    );
    throw err;
  }
  tx.finish();
  await query(client, depth > 0 ? `RELEASE SAVEPOINT ${savepoint}` : "COMMIT", undefined, "sql.commit");
  return result;
}
