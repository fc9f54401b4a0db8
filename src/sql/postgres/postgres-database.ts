import { type Clock, systemClock } from "../../clock.js";
import { ClosedError, InvalidArgumentError, isStoreError } from "../../errors.js";
import { clockOption, positiveInteger } from "../../internal/option-checks.js";
import { postgresDialect } from "../dialect.js";
import type { Database, Executor, IterateOptions, Row, RunResult, SqlParams, TransactionOptions } from "../executor.js";
import { type MigrationResult, runMigrations } from "../migration-runner.js";
import type { MigrationSet } from "../migration-set.js";
import { createPool, loadPg, type PgPool, query } from "./postgres-client.js";
import { iterateWithCursor } from "./postgres-cursor.js";
import { runPostgresTransaction } from "./postgres-transaction.js";

/** Options of {@link openPostgres}. */
export interface PostgresOptions {
  /**
   * Schema for every table, created if missing and set as `search_path` of the pool's
   * connections. Only with a connection string (a pool you pass keeps its own settings).
   */
  schema?: string;
  /** Pool size when storeroom creates the pool. Default 10. */
  max?: number;
  /** Clock for migration timestamps. Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * A PostgreSQL {@link Database} over a `pg` pool. Statements outside transactions take any
 * pooled connection; a transaction checks out one client for its whole callback.
 */
export class PostgresDatabase implements Database {
  readonly dialect = postgresDialect;
  readonly #pool: PgPool;
  readonly #ownsPool: boolean;
  readonly #clock: Clock;
  #closed = false;

  constructor(pool: PgPool, ownsPool: boolean, clock: Clock) {
    this.#pool = pool;
    this.#ownsPool = ownsPool;
    this.#clock = clock;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async run(sql: string, params?: SqlParams): Promise<RunResult> {
    this.#assertOpen("sql.run");
    const { rowCount } = await query(this.#pool, sql, params, "sql.run");
    return { changes: rowCount };
  }

  async get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    this.#assertOpen("sql.get");
    const { rows } = await query<T>(this.#pool, sql, params, "sql.get");
    return rows[0];
  }

  async all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    this.#assertOpen("sql.all");
    const { rows } = await query<T>(this.#pool, sql, params, "sql.all");
    return rows;
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, options?: IterateOptions): AsyncIterableIterator<T> {
    this.#assertOpen("sql.iterate");
    const client = await this.#pool.connect();
    let open = false;
    try {
      await query(client, "BEGIN READ ONLY", undefined, "sql.iterate");
      open = true;
      yield* iterateWithCursor<T>(client, "storeroom_cursor", sql, params, options);
    } finally {
      // Also reached when the loop is broken off early: end the transaction before reuse.
      const ended = open
        ? await query(client, "ROLLBACK", undefined, "sql.iterate").then(
            () => true,
            () => false,
          )
        : true;
      client.release(!ended);
    }
  }

  async transaction<T>(fn: (tx: Executor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    this.#assertOpen("sql.transaction");
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      return await runPostgresTransaction(client, 0, options.readOnly === true, fn, options);
    } catch (err) {
      // A failed COMMIT/ROLLBACK may leave the connection unusable; do not return it to the pool.
      if (err instanceof Error && /terminat|closed|ECONNRESET/i.test(err.message)) broken = err;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  migrate(set: MigrationSet<Executor>): Promise<MigrationResult> {
    return runMigrations(this, set, this.#clock);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await this.#pool.end();
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new ClosedError("database is closed", { op });
  }
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Connects to PostgreSQL with a connection string (storeroom owns and ends the pool) or an
 * existing `pg.Pool` (you keep ownership; `close()` leaves it open).
 *
 * @example
 * ```ts
 * const db = await openPostgres(process.env.POSTGRES_URL!, { schema: "storeroom" });
 * await db.migrate(mySet);
 * ```
 */
export async function openPostgres(
  urlOrPool: string | PgPool,
  options: PostgresOptions = {},
): Promise<PostgresDatabase> {
  const op = "sql.open";
  const clock = clockOption(options.clock, op, systemClock);
  positiveInteger(options.max, "max", op, 10);
  if (options.schema !== undefined && typeof options.schema !== "string") {
    throw new InvalidArgumentError(`schema must be a string, got ${String(options.schema)}`, { op });
  }
  if (typeof urlOrPool !== "string") {
    const pool = urlOrPool as Partial<PgPool> | null;
    if (pool === null || typeof pool !== "object" || typeof pool.connect !== "function") {
      throw new InvalidArgumentError("openPostgres needs a connection string or a pg.Pool", { op });
    }
    if (options.schema !== undefined) {
      throw new InvalidArgumentError("the schema option needs a connection string; set search_path on your own pool", {
        op,
      });
    }
    if (options.max !== undefined) {
      throw new InvalidArgumentError("the max option needs a connection string; size your own pool yourself", { op });
    }
    // Rows are decoded with pg's type parsers even on a pool the caller made.
    await loadPg();
    return new PostgresDatabase(urlOrPool, false, clock);
  }
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new InvalidArgumentError(`schema must be a name matching [a-z_][a-z0-9_]*, got "${options.schema}"`, { op });
  }
  const pool = await createPool(urlOrPool, options);
  const db = new PostgresDatabase(pool, true, clock);
  try {
    await db.run(options.schema === undefined ? "SELECT 1" : `CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
  } catch (err) {
    // Two processes creating the same schema at once: one loses the race harmlessly.
    if (isStoreError(err, "UNIQUE_VIOLATION")) return db;
    await db.close();
    throw err;
  }
  return db;
}
