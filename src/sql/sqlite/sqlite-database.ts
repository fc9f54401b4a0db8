import { AsyncLocalStorage } from "node:async_hooks";
import { BackgroundJob, checkIntervalMs } from "../../background-job.js";
import { type Clock, systemClock } from "../../clock.js";
import { ClosedError, InvalidArgumentError, TransactionError } from "../../errors.js";
import { Mutex } from "../../internal/mutex.js";
import { booleanOption, clockOption, nonNegativeInteger, positiveInteger } from "../../internal/option-checks.js";
import { sqliteDialect } from "../dialect.js";
import type { Database, Executor, IterateOptions, Row, RunResult, SqlParams, TransactionOptions } from "../executor.js";
import { type MigrationResult, runMigrations } from "../migration-runner.js";
import type { MigrationSet } from "../migration-set.js";
import { SlowWaitWarning } from "./slow-wait-warning.js";
import {
  allSql,
  getSql,
  runSql,
  type SqliteConnection,
  type SqliteConnectionOptions,
  type SqliteEngine,
} from "./sqlite-connection.js";
import { defaultSqliteEngine, openSqliteConnection, parseSqliteEngine, sqliteThreadDriver } from "./sqlite-engine.js";
import { SqliteSnapshotPool } from "./sqlite-snapshot-pool.js";
import { runSqliteTransaction, type SqliteTransaction, type TransactionContext } from "./sqlite-transaction.js";
import { WalCheckpointWorker } from "./wal-checkpoint-worker.js";

const OP = "sql.open";

/** Options of {@link openSqlite}. */
export interface SqliteOptions {
  /**
   * The driver: `"node:sqlite"` (built into Node.js 22.16 and later, nothing to install) or
   * `"better-sqlite3"` (an optional package to install). Default: `$STOREROOM_SQLITE_ENGINE`
   * when set, else `node:sqlite` where it is stable (Node 24.15+, 25.7+), else better-sqlite3
   * when installed, else `node:sqlite` when this Node has it. Both pass the same contract.
   */
  engine?: SqliteEngine;
  /** `"normal"` (default: durable across process crashes, may lose the last commits on power loss in WAL) or `"full"` (fsync every commit). */
  synchronous?: "normal" | "full";
  /** How long a statement waits for another process's lock before {@link BusyError}. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * Serve reads outside transactions from a second, read-only connection, so they never wait
   * behind a transaction that awaits between statements. Default `true` for files; always
   * `false` for `":memory:"`.
   */
  readConnection?: boolean;
  /** Open the database read-only. Default `false`. */
  readonly?: boolean;
  /** Prepared statements kept per connection. Default 500. */
  statementCacheSize?: number;
  /** Clock for migration timestamps. Default {@link systemClock}. */
  clock?: Clock;
  /**
   * Throw {@link TransactionError} when the database (or an outer `tx`) is called from inside
   * its own transaction, which would otherwise wait forever (a process warning is emitted
   * after 5 s). Costs an AsyncLocalStorage context per transaction, which on Node 20 turns on
   * promise hooks for the whole process, so it is meant for development and tests. Default `false`.
   */
  detectSelfDeadlock?: boolean;
  /**
   * WAL pages after which a commit checkpoints the WAL into the database file (SQLite's
   * `wal_autocheckpoint`), set on every connection. `0` turns automatic checkpoints off: the
   * owner then checkpoints with {@link SqliteDatabase.checkpoint} (tenant replication reads
   * committed frames from the WAL before they may be checkpointed away). Closing the last
   * connection still checkpoints. Default 1000.
   */
  walAutocheckpoint?: number;
  /**
   * Run WAL checkpoints on a worker thread with a connection of its own instead of inside the
   * commit that crosses `walAutocheckpoint` (where better-sqlite3 and node:sqlite copy the pages
   * and fsync on the event loop). Automatic checkpoints are then off on every connection of this
   * database, so `walAutocheckpoint` must be left out or 0. Files only, not read-only.
   */
  backgroundCheckpoint?: BackgroundCheckpointOptions;
}

/** Options of {@link SqliteOptions.backgroundCheckpoint}. */
export interface BackgroundCheckpointOptions {
  /**
   * Milliseconds between the end of one checkpoint and the start of the next. Each is PASSIVE:
   * it copies what it can without taking the write lock, so commits go on while it runs.
   * `0` leaves checkpoints to {@link SqliteDatabase.checkpointInBackground}. Default 100.
   */
  intervalMs?: number;
  /**
   * WAL frames (pages) beyond which a checkpoint follows its PASSIVE pass with a RESTART one.
   * The WAL starts over only when a pass copied all of it and no commit came in between, so
   * under commits that never pause it would keep growing; RESTART takes the write lock to copy
   * what was written since the PASSIVE pass (a commit meanwhile waits for it, up to
   * `busyTimeoutMs`) and makes the next commit start the WAL over. Default 10000 (about 40 MB
   * with 4 KiB pages).
   */
  restartFrames?: number;
}

/** SQLite's checkpoint modes (`PRAGMA wal_checkpoint(MODE)`). */
export type CheckpointMode = "passive" | "full" | "restart" | "truncate";

const checkpointModes: ReadonlySet<string> = new Set(["passive", "full", "restart", "truncate"]);

/** What a checkpoint did: WAL frames in the log and frames copied into the database file. */
export interface WalCheckpointResult {
  /** True when a lock kept the checkpoint from finishing (other connections reading or writing). */
  readonly busy: boolean;
  /** Frames in the WAL. */
  readonly logFrames: number;
  /** Frames copied into the database file; equal to `logFrames` when the WAL is fully checkpointed. */
  readonly checkpointedFrames: number;
}

/** Validates {@link SqliteOptions.backgroundCheckpoint} and returns its interval. */
function checkBackgroundCheckpoint(
  background: BackgroundCheckpointOptions,
  memory: boolean,
  options: SqliteOptions,
): number {
  const op = OP;
  if (typeof background !== "object" || background === null) {
    throw new InvalidArgumentError("backgroundCheckpoint must be an object", { op });
  }
  if (memory || options.readonly === true) {
    throw new InvalidArgumentError("backgroundCheckpoint needs a writable database file", { op });
  }
  if (options.walAutocheckpoint !== undefined && options.walAutocheckpoint !== 0) {
    throw new InvalidArgumentError("backgroundCheckpoint and walAutocheckpoint exclude each other", { op });
  }
  const restart = background.restartFrames;
  if (restart !== undefined && (!Number.isInteger(restart) || restart < 1)) {
    throw new InvalidArgumentError(`backgroundCheckpoint.restartFrames must be a positive integer, got ${restart}`, {
      op,
    });
  }
  return checkIntervalMs(background.intervalMs, "backgroundCheckpoint.intervalMs", op, 100);
}

/**
 * A SQLite {@link Database} over node:sqlite or better-sqlite3.
 *
 * Concurrency contract: one writer connection. A transaction holds it from BEGIN to COMMIT,
 * including across `await`s; statements issued outside the transaction meanwhile wait their
 * turn (FIFO) and never run inside it. Reads outside transactions go to a read-only connection
 * (WAL snapshot of committed data) when there is one, so they neither wait nor see uncommitted
 * writes. When nobody holds the writer, statements run immediately.
 */
export class SqliteDatabase implements Database {
  readonly dialect = sqliteDialect;
  /** The file path, or `":memory:"`. */
  readonly path: string;
  /** The driver the connections run on. */
  readonly engine: SqliteEngine;
  readonly #writer: SqliteConnection;
  readonly #reader: SqliteConnection | undefined;
  readonly #options: SqliteConnectionOptions;
  readonly #snapshots: SqliteSnapshotPool | undefined;
  readonly #gate = new Mutex();
  readonly #context: TransactionContext | undefined;
  readonly #warning: SlowWaitWarning;
  // Read-only transactions in flight, and what close() waits on until they are done.
  #readers = 0;
  #readersDone: (() => void) | undefined;
  readonly #clock: Clock;
  readonly #checkpointer: WalCheckpointWorker | undefined;
  readonly #checkpointJob: BackgroundJob<WalCheckpointResult> | undefined;
  #closed = false;

  constructor(path: string, options: SqliteOptions = {}) {
    if (typeof path !== "string") {
      throw new InvalidArgumentError(`path must be a file path or ":memory:", got ${String(path)}`, { op: OP });
    }
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError("openSqlite options must be an object", { op: OP });
    }
    const memory = path === ":memory:" || path === "";
    this.path = memory ? ":memory:" : path;
    this.engine = options.engine === undefined ? defaultSqliteEngine() : parseSqliteEngine(options.engine, "engine");
    this.#clock = clockOption(options.clock, OP, systemClock);
    const synchronous = options.synchronous ?? "normal";
    // A misspelt "FULL" must not quietly become NORMAL: it decides what a commit survives.
    if (synchronous !== "normal" && synchronous !== "full") {
      throw new InvalidArgumentError(`synchronous must be "normal" or "full", got ${String(synchronous)}`, { op: OP });
    }
    const background = options.backgroundCheckpoint;
    const checkpointEvery = background === undefined ? 0 : checkBackgroundCheckpoint(background, memory, options);
    const walAutocheckpoint = nonNegativeInteger(options.walAutocheckpoint, "walAutocheckpoint", OP, 1000);
    this.#options = {
      readonly: booleanOption(options.readonly, "readonly", OP, false),
      busyTimeoutMs: nonNegativeInteger(options.busyTimeoutMs, "busyTimeoutMs", OP, 5000),
      synchronous,
      statementCacheSize: positiveInteger(options.statementCacheSize, "statementCacheSize", OP, 500),
      wal: !memory,
      walAutocheckpoint: background === undefined ? walAutocheckpoint : 0,
    };
    const detectSelfDeadlock = booleanOption(options.detectSelfDeadlock, "detectSelfDeadlock", OP, false);
    const wantReader = !memory && booleanOption(options.readConnection, "readConnection", OP, true);
    const engine = this.engine;
    this.#writer = openSqliteConnection(engine, this.path, this.#options);
    const readOnly = { ...this.#options, readonly: true };
    try {
      this.#reader = wantReader ? openSqliteConnection(engine, this.path, readOnly) : undefined;
    } catch (err) {
      this.#writer.close();
      throw err;
    }
    this.#snapshots = wantReader
      ? new SqliteSnapshotPool(() => openSqliteConnection(engine, this.path, readOnly))
      : undefined;
    this.#context = detectSelfDeadlock ? new AsyncLocalStorage<SqliteTransaction>() : undefined;
    this.#warning = new SlowWaitWarning(`SQLite database ${this.path}`);
    if (background !== undefined) {
      // Opened after the writer: the file exists and is in WAL mode by now.
      const checkpointer = new WalCheckpointWorker({
        driver: sqliteThreadDriver(engine),
        path: this.path,
        busyTimeoutMs: this.#options.busyTimeoutMs,
        synchronous: this.#options.synchronous,
      });
      const restartFrames = background.restartFrames ?? 10_000;
      this.#checkpointer = checkpointer;
      this.#checkpointJob = new BackgroundJob({
        name: `checkpoint of ${this.path}`,
        intervalMs: checkpointEvery,
        clock: this.#clock,
        run: async () => {
          const passive = await checkpointer.checkpoint("passive");
          return passive.logFrames > restartFrames ? checkpointer.checkpoint("restart") : passive;
        },
      });
      this.#checkpointJob.start();
    }
  }

  /** True while a checkpoint of {@link SqliteOptions.backgroundCheckpoint} runs on its thread. */
  get checkpointing(): boolean {
    return this.#checkpointer?.running ?? false;
  }

  /**
   * Runs one checkpoint of {@link SqliteOptions.backgroundCheckpoint} on its thread now (after
   * one in progress) and returns what it did. Throws {@link InvalidArgumentError} when the
   * database was opened without that option.
   */
  checkpointInBackground(): Promise<WalCheckpointResult> {
    if (this.#closed) return Promise.reject(new ClosedError("database is closed", { op: "sql.checkpoint" }));
    if (this.#checkpointJob === undefined) {
      return Promise.reject(
        new InvalidArgumentError("checkpointInBackground needs the openSqlite option backgroundCheckpoint", {
          op: "sql.checkpoint",
        }),
      );
    }
    return this.#checkpointJob.runOnce();
  }

  get closed(): boolean {
    return this.#closed;
  }

  run(sql: string, params?: SqlParams): Promise<RunResult> {
    return this.#onWriter(() => runSql(this.#writer, sql, params));
  }

  get<T = Row>(sql: string, params?: SqlParams): Promise<T | undefined> {
    const reader = this.#reader;
    if (reader !== undefined && !this.#closed) {
      try {
        const p = reader.prepare(sql);
        if (p.readonly) return Promise.resolve(reader.getPrepared<T>(p, params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#onWriter(() => getSql<T>(this.#writer, sql, params));
  }

  all<T = Row>(sql: string, params?: SqlParams): Promise<T[]> {
    const reader = this.#reader;
    if (reader !== undefined && !this.#closed) {
      try {
        const p = reader.prepare(sql);
        if (p.readonly) return Promise.resolve(reader.allPrepared<T>(p, params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#onWriter(() => allSql<T>(this.#writer, sql, params));
  }

  async *iterate<T = Row>(sql: string, params?: SqlParams, _options?: IterateOptions): AsyncIterableIterator<T> {
    if (this.#closed) throw new ClosedError("database is closed", { op: "sql.iterate" });
    const snapshots = this.#snapshots;
    if (snapshots === undefined || this.#reader?.prepare(sql).readonly !== true) {
      yield* await this.all<T>(sql, params);
      return;
    }
    const conn = snapshots.take();
    try {
      yield* conn.iterate<T>(sql, params);
    } finally {
      snapshots.give(conn);
    }
  }

  transaction<T>(fn: (tx: Executor) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError("database is closed", { op: "sql.transaction" }));
    if (options.readOnly === true && this.#snapshots !== undefined) {
      try {
        return this.#readTransaction(fn);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    // With the writer free, no async layer of its own: one promise hop fewer per transaction.
    if (this.#context === undefined && this.#gate.tryAcquire()) return this.#onGate(fn, options.readOnly === true);
    return this.#queuedTransaction(fn, options.readOnly === true);
  }

  /** The slow path: the writer is busy, or self-deadlock detection must look at the caller's context first. */
  async #queuedTransaction<T>(fn: (tx: Executor) => Promise<T>, readOnly: boolean): Promise<T> {
    this.#assertNotInsideOwnTransaction();
    if (!this.#gate.tryAcquire()) await this.#warning.wait(this.#gate);
    // close() may have run while this call waited: it closes the writer while holding the gate.
    if (!this.#writer.open) {
      this.#gate.release();
      throw new ClosedError("database is closed", { op: "sql.transaction" });
    }
    return this.#onGate(fn, readOnly);
  }

  /** Runs a transaction on the writer while holding the gate, which the transaction releases as it ends. */
  #onGate<T>(fn: (tx: Executor) => Promise<T>, readOnly: boolean): Promise<T> {
    return runSqliteTransaction(this.#writer, this.#context, this.#warning, {
      parent: undefined,
      readOnly,
      fn,
      lease: this.#gate,
    });
  }

  migrate(set: MigrationSet<Executor>): Promise<MigrationResult> {
    return runMigrations(this, set, this.#clock);
  }

  /**
   * Writes a consistent copy of the database to `path` with `VACUUM INTO`, from the read
   * connection when there is one, so writers keep going while it runs. `path` must not exist.
   */
  async snapshotTo(path: string): Promise<void> {
    this.#assertOpen("sql.snapshot");
    if (this.#reader !== undefined) {
      runSql(this.#reader, "VACUUM INTO $1", [path], "sql.snapshot");
      return;
    }
    await this.#onWriter(() => runSql(this.#writer, "VACUUM INTO $1", [path], "sql.snapshot"));
  }

  /**
   * A read-only transaction on its own snapshot connection: it sees one consistent state of
   * the committed data and neither waits for nor blocks the writer.
   */
  #readTransaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
    const snapshots = this.#snapshots as SqliteSnapshotPool;
    const conn = snapshots.take();
    this.#readers++;
    const lease = {
      release: () => {
        snapshots.give(conn);
        if (--this.#readers === 0) this.#readersDone?.();
      },
    };
    return runSqliteTransaction(conn, this.#context, this.#warning, { parent: undefined, readOnly: true, fn, lease });
  }

  /**
   * Checkpoints the WAL on the writer connection, between transactions (it waits for the
   * writer like any statement). `when`, if given, runs first on the writer synchronously, so
   * no commit can happen between it and the checkpoint; when it returns false nothing is
   * checkpointed and the result is `undefined`.
   */
  checkpoint(mode: CheckpointMode = "passive", when?: () => boolean): Promise<WalCheckpointResult | undefined> {
    if (!checkpointModes.has(mode)) {
      return Promise.reject(
        new InvalidArgumentError(`unknown checkpoint mode ${String(mode)}`, { op: "sql.checkpoint" }),
      );
    }
    return this.#onWriter(() => {
      if (when !== undefined && !when()) return undefined;
      const row = getSql<{ busy: number; log: number; checkpointed: number }>(
        this.#writer,
        `PRAGMA wal_checkpoint(${mode.toUpperCase()})`,
      );
      return { busy: row?.busy === 1, logFrames: row?.log ?? 0, checkpointedFrames: row?.checkpointed ?? 0 };
    });
  }

  /** Rows changed through this database's writer since it was opened; grows on every committed or attempted write. */
  totalChanges(): number {
    this.#assertOpen("sql.totalChanges");
    return (getSql<{ n: number }>(this.#writer, "SELECT total_changes() AS n") as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#assertNotInsideOwnTransaction();
    await this.#checkpointJob?.stop();
    await this.#checkpointer?.close();
    // Work admitted before close() runs to completion first (the gate is FIFO).
    await this.#gate.acquire();
    if (this.#readers > 0) await new Promise<void>((resolve) => (this.#readersDone = resolve));
    try {
      this.#snapshots?.close();
      this.#reader?.close();
      this.#writer.close();
    } finally {
      this.#gate.release();
    }
  }

  #onWriter<T>(fn: () => T): Promise<T> {
    try {
      this.#assertOpen("sql.run");
      if (!this.#gate.locked) return Promise.resolve(fn());
      this.#assertNotInsideOwnTransaction();
      return this.#warning.acquire(this.#gate).then(() => {
        try {
          this.#assertWriterOpen("sql.run");
          return fn();
        } finally {
          this.#gate.release();
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new ClosedError("database is closed", { op });
  }

  #assertWriterOpen(op: string): void {
    if (!this.#writer.open) throw new ClosedError("database is closed", { op });
  }

  #assertNotInsideOwnTransaction(): void {
    if (this.#context?.getStore()?.active) {
      throw new TransactionError(
        "the database was called from inside one of its own transactions, which would wait for itself; use the tx passed to the callback",
        { op: "sql.transaction" },
      );
    }
  }
}

/**
 * Opens (creating if needed) a SQLite database file, or an in-memory one for `":memory:"`,
 * in WAL mode with `busy_timeout`, `foreign_keys=ON` and `synchronous=NORMAL` (or FULL), on
 * the engine named by `options.engine` (see {@link SqliteOptions.engine} for the default).
 *
 * @example
 * ```ts
 * const db = await openSqlite("./app.db");
 * await db.run("CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT)");
 * await db.run("INSERT INTO notes VALUES ($1, $2)", ["n1", "hello"]);
 * console.log(await db.get("SELECT body FROM notes WHERE id = $1", ["n1"]));
 * await db.close();
 * ```
 */
export async function openSqlite(path: string, options?: SqliteOptions): Promise<SqliteDatabase> {
  return new SqliteDatabase(path, options);
}
