import { createRequire } from "node:module";
import { UnsupportedError } from "../../errors.js";
import { LruMap } from "../../internal/lru-map.js";
import type { Row, RunResult, SqlParams, SqlValue } from "../executor.js";
import {
  configureConnection,
  type PreparedStatement,
  type SqliteConnection,
  type SqliteConnectionOptions,
} from "./sqlite-connection.js";
import { mapSqliteError } from "./sqlite-errors.js";
import { toPositional } from "./sqlite-placeholders.js";

// The part of node:sqlite used here, typed locally so the build does not depend on which
// Node version's type definitions are installed.
interface NodeStatementSync {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): Row | undefined;
  all(...params: unknown[]): Row[];
  iterate(...params: unknown[]): IterableIterator<Row>;
  columns?(): unknown[];
  setReadBigInts(enabled: boolean): void;
}

interface NodeDatabaseSync {
  readonly isOpen: boolean;
  readonly isTransaction: boolean;
  prepare(sql: string): NodeStatementSync;
  exec(sql: string): void;
  close(): void;
}

interface NodeSqliteModule {
  DatabaseSync: new (path: string, options: { readOnly: boolean }) => NodeDatabaseSync;
}

interface NodeStatement extends PreparedStatement {
  readonly statement: NodeStatementSync;
  /** For each `?`, the 1-based parameter index it binds; `undefined` for identity order. */
  readonly order: readonly number[] | undefined;
  /**
   * Integers are read as bigint (and safe ones turned back into numbers), because a plain
   * read throws on integers beyond 2^53. Turned on when a read-only statement first meets
   * one, and from the start for writes that return rows, which cannot be run twice.
   */
  bigints: boolean;
}

let driver: NodeSqliteModule | undefined;

/** True when this Node.js has `node:sqlite` with what the engine needs (Node 22.16 or later, 23.11, 24). */
export function nodeSqliteAvailable(): boolean {
  return loadDriverOrUndefined() !== undefined;
}

function loadDriverOrUndefined(): NodeSqliteModule | undefined {
  if (driver !== undefined) return driver;
  let mod: NodeSqliteModule | undefined;
  try {
    mod = createRequire(import.meta.url)("node:sqlite") as NodeSqliteModule;
  } catch {
    return undefined;
  }
  // isTransaction (22.16, 23.11) is the newest member relied on; it lives on instances.
  const probe = new mod.DatabaseSync(":memory:", { readOnly: false });
  const complete = typeof probe.isTransaction === "boolean";
  probe.close();
  if (!complete) return undefined;
  driver = mod;
  return mod;
}

function loadDriver(): NodeSqliteModule {
  const mod = loadDriverOrUndefined();
  if (mod === undefined) {
    throw new UnsupportedError(
      `the SQLite engine "node:sqlite" needs Node.js 22.16 or later (this is ${process.version}); use engine "better-sqlite3"`,
      { op: "sql.open" },
    );
  }
  return mod;
}

// sqlite3_stmt_readonly is not exposed by node:sqlite, so it is read from the statement's
// bytecode: a statement writes when it opens a write transaction or runs one of the opcodes
// SQLite itself counts as writing. The answer depends on the text only, so it is shared by
// every connection of the process.
const WRITING_OPCODES = new Set(["Checkpoint", "Vacuum", "JournalMode", "VUpdate"]);
const readonlyByText = new LruMap<string, boolean>(4096);

/** A {@link SqliteConnection} on Node.js's built-in `node:sqlite`; this file is the only place that touches it. */
export class NodeSqliteConnection implements SqliteConnection {
  readonly #db: NodeDatabaseSync;
  // Insertion-ordered and evicted oldest-first: a hit costs one Map lookup.
  readonly #cache = new Map<string, NodeStatement>();
  readonly #cacheSize: number;

  constructor(path: string, options: SqliteConnectionOptions) {
    const { DatabaseSync } = loadDriver();
    try {
      this.#db = new DatabaseSync(path, { readOnly: options.readonly });
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
    return this.#db.isOpen;
  }

  get inTransaction(): boolean {
    return this.#db.isOpen && this.#db.isTransaction;
  }

  prepare(sql: string): NodeStatement {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) return hit;
    const positional = toPositional(sql);
    const text = positional?.sql ?? sql;
    let statement: NodeStatementSync;
    let readonly: boolean;
    try {
      statement = this.#db.prepare(text);
      readonly = this.#isReadonly(text);
    } catch (err) {
      throw mapSqliteError(err, "sql.prepare");
    }
    const bigints = !readonly && (statement.columns?.().length ?? 1) > 0;
    if (bigints) statement.setReadBigInts(true);
    const prepared: NodeStatement = { statement, order: positional?.order, readonly, bigints };
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

  runPrepared(p: NodeStatement, params: SqlParams | undefined, op = "sql.run"): RunResult {
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
      return { changes: Number(info.changes) };
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  getPrepared<T>(p: NodeStatement, params: SqlParams | undefined): T | undefined {
    try {
      const args = bind(p, params);
      let row: Row | undefined;
      try {
        // Spread calls cost measurably on this hot path; one and two parameters are the common cases.
        row =
          args.length === 0
            ? p.statement.get()
            : args.length === 1
              ? p.statement.get(args[0])
              : args.length === 2
                ? p.statement.get(args[0], args[1])
                : p.statement.get(...args);
      } catch (err) {
        if (!switchToBigints(p, err)) throw err;
        row = p.statement.get(...args);
      }
      return row === undefined ? undefined : (normalize(row, p.bigints) as T);
    } catch (err) {
      throw mapSqliteError(err, "sql.get");
    }
  }

  allPrepared<T>(p: NodeStatement, params: SqlParams | undefined): T[] {
    try {
      const args = bind(p, params);
      let rows: Row[];
      try {
        rows = p.statement.all(...args);
      } catch (err) {
        if (!switchToBigints(p, err)) throw err;
        rows = p.statement.all(...args);
      }
      for (let i = 0; i < rows.length; i++) rows[i] = normalize(rows[i] as Row, p.bigints);
      return rows as T[];
    } catch (err) {
      throw mapSqliteError(err, "sql.all");
    }
  }

  iterate<T = Row>(sql: string, params: SqlParams | undefined): IterableIterator<T> {
    const p = this.prepare(sql);
    let rows: IterableIterator<Row>;
    try {
      // Rows already handed out cannot be read again, so a cursor reads every integer as
      // bigint from the start instead of switching when it meets a large one.
      p.statement.setReadBigInts(true);
      rows = p.statement.iterate(...bind(p, params));
    } catch (err) {
      p.statement.setReadBigInts(p.bigints);
      throw mapSqliteError(err, "sql.iterate");
    }
    return normalizedRows<T>(p, rows);
  }

  exec(sql: string, op = "sql.exec"): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw mapSqliteError(err, op);
    }
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.isOpen) this.#db.close();
  }

  #isReadonly(text: string): boolean {
    const known = readonlyByText.get(text);
    if (known !== undefined) return known;
    let readonly = true;
    for (const op of this.#db.prepare(`EXPLAIN ${text}`).all()) {
      if ((op.opcode === "Transaction" && op.p2 !== 0) || WRITING_OPCODES.has(op.opcode as string)) {
        readonly = false;
        break;
      }
    }
    readonlyByText.set(text, readonly);
    return readonly;
  }
}

function* normalizedRows<T>(p: NodeStatement, rows: IterableIterator<Row>): IterableIterator<T> {
  try {
    for (const row of rows) yield normalize(row, true) as T;
  } catch (err) {
    throw mapSqliteError(err, "sql.iterate");
  } finally {
    p.statement.setReadBigInts(p.bigints);
  }
}

function switchToBigints(p: NodeStatement, err: unknown): boolean {
  if (p.bigints || !p.readonly || (err as { code?: unknown }).code !== "ERR_OUT_OF_RANGE") return false;
  p.statement.setReadBigInts(true);
  p.bigints = true;
  return true;
}

/** Blobs as Buffer (as on better-sqlite3 and pg), and with `bigints`, safe integers back as numbers. */
function normalize(row: Row, bigints: boolean): Row {
  for (const key in row) {
    const v = row[key];
    if (typeof v === "object") {
      if (v !== null) {
        const bytes = v as Uint8Array;
        row[key] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      }
    } else if (bigints && typeof v === "bigint" && v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER) {
      row[key] = Number(v);
    }
  }
  return row;
}

const NONE: unknown[] = [];

function bind(p: NodeStatement, params: SqlParams | undefined): unknown[] {
  if (params === undefined || params.length === 0) return NONE;
  const order = p.order;
  if (order === undefined) {
    for (let i = 0; i < params.length; i++) {
      if (typeof params[i] === "boolean") return params.map(toSqlite);
    }
    return params as unknown[];
  }
  return order.map((n) => toSqlite(params[n - 1] as SqlValue));
}

function toSqlite(value: SqlValue): unknown {
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}
