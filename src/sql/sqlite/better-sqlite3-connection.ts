import type BetterSqlite3 from "better-sqlite3";
import { requireOptional } from "../../internal/optional-dependency.js";
import type { Row, RunResult, SqlParams, SqlValue } from "../executor.js";
import {
  configureConnection,
  type PreparedStatement,
  type SqliteConnection,
  type SqliteConnectionOptions,
} from "./sqlite-connection.js";
import { mapSqliteError } from "./sqlite-errors.js";
import { toPositional } from "./sqlite-placeholders.js";

interface BetterStatement extends PreparedStatement {
  readonly statement: BetterSqlite3.Statement;
  /** For each `?`, the 1-based parameter index it binds; `undefined` for identity order. */
  readonly order: readonly number[] | undefined;
  /** True when the statement returns rows (SELECT, RETURNING, some PRAGMAs). */
  readonly returnsData: boolean;
}

let driver: typeof BetterSqlite3 | undefined;

/** better-sqlite3, loaded on the first connection so that installs without it work on `node:sqlite`. */
function loadDriver(): typeof BetterSqlite3 {
  driver ??= requireOptional<typeof BetterSqlite3>("better-sqlite3", 'the SQLite engine "better-sqlite3"');
  return driver;
}

/** A {@link SqliteConnection} on better-sqlite3; this file is the only place that touches it. */
export class BetterSqlite3Connection implements SqliteConnection {
  readonly #db: BetterSqlite3.Database;
  // Insertion-ordered and evicted oldest-first: a hit costs one Map lookup.
  readonly #cache = new Map<string, BetterStatement>();
  readonly #cacheSize: number;

  constructor(path: string, options: SqliteConnectionOptions) {
    try {
      const Driver = loadDriver();
      this.#db = new Driver(path, { readonly: options.readonly, timeout: options.busyTimeoutMs });
    } catch (err) {
      throw mapSqliteError(err, "sql.open");
    }
    this.#cacheSize = Math.max(1, options.statementCacheSize);
    try {
      configureConnection(this, options);
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  get open(): boolean {
    return this.#db.open;
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  /** Prepares (or finds in the cache) the statement for `sql`. */
  prepare(sql: string): BetterStatement {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) return hit;
    const positional = toPositional(sql);
    let statement: BetterSqlite3.Statement;
    try {
      statement = this.#db.prepare(positional?.sql ?? sql);
    } catch (err) {
      throw mapSqliteError(err, "sql.prepare");
    }
    const prepared: BetterStatement = {
      statement,
      order: positional?.order,
      readonly: statement.readonly,
      returnsData: statement.reader,
    };
    if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(sql, prepared);
    return prepared;
  }

  control(sql: string, op: string): void {
    const p = this.prepare(sql);
    try {
      p.statement.run();
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  runPrepared(p: BetterStatement, params: SqlParams | undefined, op = "sql.run"): RunResult {
    try {
      const args = bind(p, params);
      const info =
        args.length === 0
          ? p.statement.run()
          : args.length === 2
            ? p.statement.run(args[0], args[1])
            : args.length === 1
              ? p.statement.run(args[0])
              : p.statement.run(...args);
      return { changes: info.changes };
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  getPrepared<T>(p: BetterStatement, params: SqlParams | undefined): T | undefined {
    try {
      if (p.returnsData) {
        const args = bind(p, params);
        // Spread calls cost measurably on this hot path; one and two parameters are the common cases.
        if (args.length === 0) return p.statement.get() as T | undefined;
        if (args.length === 1) return p.statement.get(args[0]) as T | undefined;
        if (args.length === 2) return p.statement.get(args[0], args[1]) as T | undefined;
        return p.statement.get(...args) as T | undefined;
      }
      p.statement.run(...bind(p, params));
      return undefined;
    } catch (err) {
      throw mapSqliteError(err, "sql.get");
    }
  }

  allPrepared<T>(p: BetterStatement, params: SqlParams | undefined): T[] {
    try {
      if (p.returnsData) return p.statement.all(...bind(p, params)) as T[];
      p.statement.run(...bind(p, params));
      return [];
    } catch (err) {
      throw mapSqliteError(err, "sql.all");
    }
  }

  /** A synchronous row iterator; the connection can run nothing else until it finishes or is returned. */
  iterate<T = Row>(sql: string, params: SqlParams | undefined): IterableIterator<T> {
    const p = this.prepare(sql);
    try {
      return p.statement.iterate(...bind(p, params)) as IterableIterator<T>;
    } catch (err) {
      throw mapSqliteError(err, "sql.iterate");
    }
  }

  /** Runs SQL text without parameters (several statements allowed). */
  exec(sql: string, op = "sql.exec"): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.open) this.#db.close();
  }
}

const NONE: unknown[] = [];

function bind(p: BetterStatement, params: SqlParams | undefined): unknown[] {
  if (params === undefined || params.length === 0) return NONE;
  const order = p.order;
  if (order === undefined) {
    for (let i = 0; i < params.length; i++) {
      const v = params[i];
      // Buffers (the common binary case) pass as they are: one instanceof check each.
      if (
        typeof v === "object" ? v !== null && !(v instanceof Buffer) && v instanceof Uint8Array : typeof v === "boolean"
      ) {
        return params.map(toSqlite);
      }
    }
    return params as unknown[];
  }
  return order.map((n) => toSqlite(params[n - 1] as SqlValue));
}

function toSqlite(value: SqlValue): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}
