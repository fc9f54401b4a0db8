import { type Clock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError } from "../errors.js";
import { Mutex } from "../internal/mutex.js";
import { booleanOption, clockOption, databaseInstance } from "../internal/option-checks.js";
import { type Database, type Executor, type ExecutorOptions, takeTransactionLock } from "../sql/index.js";
import { type AuditCheckpoint, checkpointSignatureValid, type KeyInput, signCheckpoint } from "./audit-checkpoint.js";
import { blake3Hex } from "./blake3-hex.js";
import { busMigrations } from "./bus-migrations.js";
import { fixedChunks, placeholderRows, textPerSize } from "./sql-lists.js";

/** `hex(BLAKE3(""))`: the prev_hash of the first row. */
export const AUDIT_GENESIS_HASH = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

/** One append-only audit row. */
export interface AuditRow {
  /** Chain position, from 0. */
  readonly seq: number;
  /** Hash of the previous row ({@link AUDIT_GENESIS_HASH} for seq 0). */
  readonly prevHash: string;
  /** `hex(BLAKE3(prevHash as ASCII || event))`. */
  readonly hash: string;
  /** The event bytes, stored and hashed verbatim. */
  readonly event: Uint8Array;
  /** Append time, ms. */
  readonly ts: number;
}

/** The first place where the chain does not hold. */
export interface AuditBreak {
  /** Position in the walk (0-based). */
  readonly index: number;
  /** Seq of the offending row (or of the checkpoint, for truncation and signature breaks). */
  readonly seq: number;
  /** What is wrong, in words. */
  readonly detail: string;
}

/** Options of {@link AuditLog.verify}. */
export interface AuditVerifyOptions {
  /** A checkpoint from {@link AuditLog.checkpoint}: the log must still extend it. */
  checkpoint?: AuditCheckpoint;
  /** The Ed25519 public key matching the key that signed `checkpoint`; required with it. */
  publicKey?: KeyInput;
  /**
   * Called after each row checked with the rows checked so far and the row count when the walk
   * started (rows appended meanwhile can make `done` exceed it). For a progress bar; must not throw.
   */
  onProgress?: (done: number, total?: number) => void;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** The database holding `bus_audit`. The caller keeps ownership. */
  database: Database;
  /** Source of row timestamps (ms). Default {@link systemClock}. */
  clock?: Clock;
  /** Apply the `bus` migrations on open. Default `true`; `false` for read-only inspection of an existing log. */
  migrate?: boolean;
}

/** Any 64-bit constant; it serializes appends of several processes on one PostgreSQL database. */
const AUDIT_APPEND_LOCK = 4_711_042_424_242_017;

/** The chain link: `hex(BLAKE3(prevHash || event))`, the previous hash entering as its hex ASCII. */
export function auditChainHash(prevHash: string, event: Uint8Array): string {
  return blake3Hex(prevHash, event);
}

/** Rows per page while verifying. */
const VERIFY_PAGE = 4096;

type RawAuditRow = { seq: number | string; prev_hash: string; hash: string; event: Uint8Array; ts: number | string };

/**
 * peerbus's tamper-evident, append-only audit chain. Appends are serialized: an in-process
 * FIFO mutex plus one transaction per append (and an advisory lock on PostgreSQL), so
 * concurrent callers, even in several processes, never fork the chain.
 *
 * @example
 * ```ts
 * const audit = await AuditLog.open({ database });
 * await audit.append(Buffer.from('{"event":"send","id":"m1","from":"a","to":"b"}'));
 * const cp = await audit.checkpoint(privateKey); // keep it elsewhere
 * const broken = await audit.verify({ checkpoint: cp, publicKey }); // null when intact
 * ```
 */
export class AuditLog {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #mutex = new Mutex();
  #closed = false;

  private constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Migrates the `bus` set (unless `migrate: false`) and returns a log. */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const op = "bus.audit.open";
    const database = databaseInstance(options.database, "database", op);
    const clock = clockOption(options.clock, op, systemClock);
    if (booleanOption(options.migrate, "migrate", op, true)) await database.migrate(busMigrations);
    return new AuditLog(database, clock);
  }

  /** Appends one event (bytes, stored verbatim) and returns its row. */
  async append(event: Uint8Array): Promise<AuditRow> {
    const [row] = await this.appendMany([event]);
    return row as AuditRow;
  }

  /**
   * Appends events in order in one transaction; all or none. Returns their rows. With
   * `{ executor }` the rows join the caller's transaction and commit or roll back with it (a
   * broker writes a message and its audit row in one commit); that transaction then orders the
   * append (and takes the engine's transaction lock, so several processes never fork the chain).
   */
  async appendMany(events: readonly Uint8Array[], options: ExecutorOptions = {}): Promise<AuditRow[]> {
    this.#assertOpen("bus.audit.append");
    for (const e of events) {
      if (!(e instanceof Uint8Array))
        throw new InvalidArgumentError("audit events must be bytes", { op: "bus.audit.append" });
    }
    if (events.length === 0) return [];
    const executor = options.executor;
    // No mutex inside the caller's transaction: it already holds the writer, and an append of
    // our own waiting on the mutex while holding nothing must not block it.
    if (executor !== undefined) return await this.#append(executor, events);
    return this.#mutex.run(() => this.#db.transaction((tx) => this.#append(tx, events)));
  }

  async #append(tx: Executor, events: readonly Uint8Array[]): Promise<AuditRow[]> {
    // Checked here: an await of a lock that is not needed still costs a turn on the hot path.
    if (tx.dialect.advisoryLocks) await takeTransactionLock(tx, AUDIT_APPEND_LOCK);
    // Only the head's position and hash: its event and times are not needed to chain on.
    const last = await tx.get<{ seq: number | string; hash: string }>(
      "SELECT seq, hash FROM bus_audit ORDER BY seq DESC LIMIT 1",
    );
    let seq = last === undefined ? 0 : Number(last.seq) + 1;
    let prevHash = last === undefined ? AUDIT_GENESIS_HASH : last.hash;
    // Whole ms: the column is BIGINT on PostgreSQL, which refuses a fraction.
    const ts = Math.floor(this.#clock.now());
    const rows: AuditRow[] = [];
    for (const event of events) {
      const hash = auditChainHash(prevHash, event);
      rows.push({ seq, prevHash, hash, event, ts });
      prevHash = hash;
      seq++;
    }
    let at = 0;
    for (const size of fixedChunks(rows.length)) {
      const params: (number | string | Uint8Array)[] = [];
      for (const r of rows.slice(at, at + size)) params.push(r.seq, r.prevHash, r.hash, r.event, r.ts);
      at += size;
      await tx.run(insertRows(size), params);
    }
    return rows;
  }

  /**
   * Walks the log by seq and returns the first break (a missing or reordered seq, a wrong
   * prev_hash, a tampered event), or `null` when intact; an empty log is intact. With a
   * checkpoint it also breaks when the checkpoint's signature does not verify, when the row at
   * the checkpoint's seq has another hash (a rewrite), or when the log ends before it
   * (truncation). Rows are streamed, not loaded at once.
   */
  async verify(options: AuditVerifyOptions = {}): Promise<AuditBreak | null> {
    this.#assertOpen("bus.audit.verify");
    const { checkpoint, publicKey } = options;
    if (checkpoint !== undefined) {
      if (publicKey === undefined) throw new InvalidArgumentError("verifying a checkpoint needs its public key");
      if (!checkpointSignatureValid(checkpoint, publicKey)) {
        return { index: checkpoint.seq, seq: checkpoint.seq, detail: "checkpoint signature does not verify" };
      }
    }
    const { onProgress } = options;
    const total = onProgress === undefined ? undefined : await this.count();
    let index = 0;
    let expected = AUDIT_GENESIS_HASH;
    for await (const page of this.#pages()) {
      for (const row of page) {
        const seq = Number(row.seq);
        if (seq !== index)
          return { index, seq, detail: `expected seq ${index}, found ${seq}: a row is missing or out of order` };
        if (row.prev_hash !== expected)
          return { index, seq, detail: "prev_hash does not match the previous row's hash" };
        if (auditChainHash(row.prev_hash, row.event) !== row.hash) {
          return { index, seq, detail: "hash does not match the event: the event or hash was tampered with" };
        }
        if (checkpoint !== undefined && seq === checkpoint.seq && row.hash !== checkpoint.hash) {
          return { index, seq, detail: "row differs from the signed checkpoint: the log was rewritten" };
        }
        expected = row.hash;
        index++;
        onProgress?.(index, total);
      }
    }
    if (checkpoint !== undefined && index <= checkpoint.seq) {
      return {
        index,
        seq: checkpoint.seq,
        detail: `log truncated: the checkpoint covers seq ${checkpoint.seq} but the log has ${index} rows`,
      };
    }
    return null;
  }

  /** Signs the current last row with an Ed25519 private key. Throws {@link InvalidArgumentError} on an empty log. */
  async checkpoint(privateKey: KeyInput): Promise<AuditCheckpoint> {
    const last = await this.last();
    if (last === undefined) throw new InvalidArgumentError("the audit log is empty: nothing to checkpoint");
    return signCheckpoint(last.seq, last.hash, privateKey);
  }

  /** Every row by seq ascending (the whole log in memory; use {@link AuditLog.verify} to walk big logs). */
  async rows(): Promise<AuditRow[]> {
    this.#assertOpen("bus.audit.rows");
    const rows = await this.#db.all<RawAuditRow>("SELECT seq, prev_hash, hash, event, ts FROM bus_audit ORDER BY seq");
    return rows.map(toAuditRow);
  }

  /** The row with the highest seq, or `undefined` when the log is empty. */
  async last(): Promise<AuditRow | undefined> {
    this.#assertOpen("bus.audit.last");
    const row = await lastRow(this.#db);
    return row === undefined ? undefined : toAuditRow(row);
  }

  /** Number of rows. */
  async count(): Promise<number> {
    this.#assertOpen("bus.audit.count");
    const row = await this.#db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM bus_audit");
    return Number(row?.n ?? 0);
  }

  /** Marks the log closed; later calls throw {@link ClosedError}. The database stays open. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /**
   * Rows by seq in keyset pages: bounded memory like a cursor, but about twice as fast as
   * per-row iteration because each page crosses the async boundary once.
   */
  async *#pages(): AsyncGenerator<RawAuditRow[]> {
    let after = -1;
    for (;;) {
      const page = await this.#db.all<RawAuditRow>(
        `SELECT seq, prev_hash, hash, event FROM bus_audit WHERE seq > $1 ORDER BY seq LIMIT ${VERIFY_PAGE}`,
        [after],
      );
      if (page.length > 0) yield page;
      if (page.length < VERIFY_PAGE) return;
      after = Number(page[page.length - 1]?.seq);
    }
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new ClosedError("audit log is closed", { op });
  }
}

const insertRows = textPerSize(
  (size) => `INSERT INTO bus_audit (seq, prev_hash, hash, event, ts) VALUES ${placeholderRows(size, 5)}`,
);

function lastRow(executor: Executor): Promise<RawAuditRow | undefined> {
  return executor.get<RawAuditRow>("SELECT seq, prev_hash, hash, event, ts FROM bus_audit ORDER BY seq DESC LIMIT 1");
}

function toAuditRow(r: RawAuditRow): AuditRow {
  return { seq: Number(r.seq), prevHash: r.prev_hash, hash: r.hash, event: r.event, ts: Number(r.ts) };
}
