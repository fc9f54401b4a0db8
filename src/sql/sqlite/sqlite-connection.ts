import BetterSqlite3 from "better-sqlite3";
import { LruMap } from "../../internal/lru-map.js";
import type { Row, RunResult, SqlParams, SqlValue } from "../executor.js";
import { mapSqliteError } from "./sqlite-errors.js";

/** How a connection is opened. */
export interface SqliteConnectionOptions {
  readonly: boolean;
  busyTimeoutMs: number;
  synchronous: "normal" | "full";
  statementCacheSize: number;
  wal: boolean;
}

interface CachedStatement {
  readonly statement: BetterSqlite3.Statement;
  /** `$n` placeholders bind from an object keyed by n; `?` placeholders bind positionally. */
  readonly named: boolean;
  readonly readonly: boolean;
  readonly returnsData: boolean;
}

type Bound = unknown[] | [Record<number, unknown>];

/**
 * One better-sqlite3 connection with a statement cache. This file is the only place that
 * touches better-sqlite3; everything above it speaks {@link Executor}.
 */
export class SqliteConnection {
  readonly #db: BetterSqlite3.Database;
  readonly #cache: LruMap<string, CachedStatement>;

  constructor(path: string, options: SqliteConnectionOptions) {
    try {
      this.#db = new BetterSqlite3(path, { readonly: options.readonly, timeout: options.busyTimeoutMs });
      if (options.wal && !options.readonly) this.#db.pragma("journal_mode = WAL");
      this.#db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
      this.#db.pragma("foreign_keys = ON");
      // LIKE prefixes must match literally and the same way as on PostgreSQL.
      this.#db.pragma("case_sensitive_like = ON");
    } catch (err) {
      throw mapSqliteError(err, "sql.open");
    }
    this.#cache = new LruMap(options.statementCacheSize);
  }

  get open(): boolean {
    return this.#db.open;
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }

  /** Whether the statement only reads (prepared and cached as a side effect). */
  isReadOnly(sql: string): boolean {
    return this.#prepare(sql).readonly;
  }

  run(sql: string, params: SqlParams | undefined, op = "sql.run"): RunResult {
    const cached = this.#prepare(sql);
    try {
      return { changes: cached.statement.run(...bind(cached, params)).changes };
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  get<T>(sql: string, params: SqlParams | undefined): T | undefined {
    const cached = this.#prepare(sql);
    try {
      if (!cached.returnsData) {
        cached.statement.run(...bind(cached, params));
        return undefined;
      }
      return cached.statement.get(...bind(cached, params)) as T | undefined;
    } catch (err) {
      throw mapSqliteError(err, "sql.get");
    }
  }

  all<T>(sql: string, params: SqlParams | undefined): T[] {
    const cached = this.#prepare(sql);
    try {
      if (!cached.returnsData) {
        cached.statement.run(...bind(cached, params));
        return [];
      }
      return cached.statement.all(...bind(cached, params)) as T[];
    } catch (err) {
      throw mapSqliteError(err, "sql.all");
    }
  }

  /** A synchronous row iterator; the connection can run nothing else until it finishes or is returned. */
  iterate<T = Row>(sql: string, params: SqlParams | undefined): IterableIterator<T> {
    const cached = this.#prepare(sql);
    try {
      return cached.statement.iterate(...bind(cached, params)) as IterableIterator<T>;
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

  #prepare(sql: string): CachedStatement {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) return hit;
    let statement: BetterSqlite3.Statement;
    try {
      statement = this.#db.prepare(sql);
    } catch (err) {
      throw mapSqliteError(err, "sql.prepare");
    }
    const cached: CachedStatement = {
      statement,
      named: /\$\d/.test(sql),
      readonly: statement.readonly,
      returnsData: statement.reader,
    };
    this.#cache.set(sql, cached);
    return cached;
  }
}

function bind(cached: CachedStatement, params: SqlParams | undefined): Bound {
  if (params === undefined || params.length === 0) return [];
  if (!cached.named) return params.map(toSqlite);
  const named: Record<number, unknown> = {};
  for (let i = 0; i < params.length; i++) named[i + 1] = toSqlite(params[i] as SqlValue);
  return [named];
}

function toSqlite(value: SqlValue): unknown {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return value;
}
