import { BusyError } from "../../errors.js";
import type { Row, RunResult, SqlParams } from "../executor.js";

/** The SQLite drivers storeroom can run on. */
export type SqliteEngine = "node:sqlite" | "better-sqlite3";

/** How a connection is opened. */
export interface SqliteConnectionOptions {
  readonly: boolean;
  busyTimeoutMs: number;
  synchronous: "normal" | "full";
  statementCacheSize: number;
  wal: boolean;
  /** `PRAGMA wal_autocheckpoint` of the connection: WAL pages before a commit checkpoints; 0 never. Default SQLite's (1000). */
  walAutocheckpoint?: number;
}

/** A statement prepared by a {@link SqliteConnection}; only the connection that made it can run it. */
export interface PreparedStatement {
  /** True when the statement cannot write (SQLite's `sqlite3_stmt_readonly`). */
  readonly readonly: boolean;
}

/**
 * One SQLite connection with a statement cache: the whole surface the engine adapters
 * implement. The database, transaction and snapshot logic above it is shared by every
 * engine and never touches a driver. Every method throws storeroom errors
 * ({@link mapSqliteError}), never the driver's own.
 */
export interface SqliteConnection {
  /** False once closed. */
  readonly open: boolean;
  /** True between BEGIN and COMMIT/ROLLBACK (SQLite's autocommit flag is off). */
  readonly inTransaction: boolean;
  /** Prepares (or finds in the cache) the statement for `sql`, with `$n` placeholders. */
  prepare(sql: string): PreparedStatement;
  /** Runs a prepared statement and reports the rows it changed. `op` names the operation in errors. */
  runPrepared(p: PreparedStatement, params: SqlParams | undefined, op?: string): RunResult;
  /** The first row of a prepared statement, or `undefined`; a statement returning no rows just runs. */
  getPrepared<T>(p: PreparedStatement, params: SqlParams | undefined): T | undefined;
  /** Every row of a prepared statement; a statement returning no rows just runs. */
  allPrepared<T>(p: PreparedStatement, params: SqlParams | undefined): T[];
  /**
   * Runs a statement without parameters or result, such as BEGIN, COMMIT or SAVEPOINT,
   * through the statement cache (parsed once per connection) and without building a result.
   */
  control(sql: string, op: string): void;
  /** A synchronous row iterator; the connection can run nothing else until it finishes or is returned. */
  iterate<T = Row>(sql: string, params: SqlParams | undefined): IterableIterator<T>;
  /** Runs SQL text without parameters (several statements allowed). */
  exec(sql: string, op?: string): void;
  /** Finalizes the cached statements and closes the connection. Idempotent. */
  close(): void;
}

/** Prepares and runs `sql` on `conn`. */
export function runSql(conn: SqliteConnection, sql: string, params?: SqlParams, op = "sql.run"): RunResult {
  return conn.runPrepared(conn.prepare(sql), params, op);
}

/** The first row of `sql` on `conn`. */
export function getSql<T>(conn: SqliteConnection, sql: string, params?: SqlParams): T | undefined {
  return conn.getPrepared<T>(conn.prepare(sql), params);
}

/** Every row of `sql` on `conn`. */
export function allSql<T>(conn: SqliteConnection, sql: string, params?: SqlParams): T[] {
  return conn.allPrepared<T>(conn.prepare(sql), params);
}

/**
 * The pragmas every connection gets, whatever its engine: WAL on writable files, the
 * durability level, foreign keys, LIKE matching literally and the same way as on
 * PostgreSQL, and the automatic checkpoint threshold when it is not SQLite's default. The busy timeout comes first so that switching to WAL waits for other processes; a switch
 * that collides with another process's is tried again until that timeout.
 */
export function configureConnection(conn: SqliteConnection, options: SqliteConnectionOptions): void {
  conn.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs))}`, "sql.open");
  if (options.wal && !options.readonly) switchToWal(conn, options.busyTimeoutMs);
  conn.exec(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`, "sql.open");
  conn.exec("PRAGMA foreign_keys = ON", "sql.open");
  conn.exec("PRAGMA case_sensitive_like = ON", "sql.open");
  if (options.walAutocheckpoint !== undefined && options.walAutocheckpoint !== 1000) {
    conn.exec(`PRAGMA wal_autocheckpoint = ${Math.max(0, Math.trunc(options.walAutocheckpoint))}`, "sql.open");
  }
}

// Switching a file to WAL reads it under a shared lock and then needs an exclusive one. When
// several processes open a new file at once, each holds its shared lock while it waits for
// the others' to go: SQLite sees the deadlock and answers SQLITE_BUSY at once, without the
// busy handler. Backing off and trying again until the busy timeout lets one of them win;
// the others then find the file in WAL already.
function switchToWal(conn: SqliteConnection, busyTimeoutMs: number): void {
  const deadline = performance.now() + Math.max(0, busyTimeoutMs);
  for (let attempt = 0; ; attempt++) {
    try {
      conn.exec("PRAGMA journal_mode = WAL", "sql.open");
      return;
    } catch (err) {
      if (!(err instanceof BusyError) || performance.now() >= deadline) throw err;
      sleepSync(Math.min(2 ** attempt, 50) * (0.5 + Math.random()));
    }
  }
}

// Opening is synchronous in every engine, so the back-off blocks the thread briefly; it only
// happens while another process is switching the same new file to WAL.
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
