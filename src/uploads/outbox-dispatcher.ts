import { BackgroundJob } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { databaseOption, positiveInteger } from "../internal/option-checks.js";
import type { Executor } from "../sql/index.js";
import type { OutboxRecord } from "./upload-events.js";

/** Where the dispatcher delivers events (a webhook, a bus, a log). */
export interface OutboxSink {
  /** Names the sink in errors and metrics. */
  readonly name: string;
  /** Delivers one event; resolving means accepted. Throwing (or rejecting) counts as a failed attempt. */
  deliver(event: OutboxRecord): Promise<void>;
}

/** Options of {@link OutboxDispatcher}. */
export interface OutboxDispatcherOptions {
  /** The database holding the outbox (migrated with `uploadsMigrations`). Required. */
  database?: Executor;
  /** Every event goes to every sink; with none, events are marked dispatched at once (readers of the table still see them). */
  sinks: readonly OutboxSink[];
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Time between runs of {@link OutboxDispatcher.start}; `0` disables the timer. Default 1000. */
  intervalMs?: number;
  /** Events leased per run. Default 100. */
  batchSize?: number;
  /** How long leased events stay invisible to other dispatchers. Default 60 s. */
  leaseMs?: number;
  /** Attempts before an event is dead-lettered (marked `dead_at`, never retried, kept). Default 10. */
  maxAttempts?: number;
  /** Backoff before attempt n+1: `baseBackoffMs * 2^(n-1)`, capped by `maxBackoffMs`. Default 1000. */
  baseBackoffMs?: number;
  /** Default 10 min. */
  maxBackoffMs?: number;
  /** Delivered events are purged this long after delivery (event streams resume within it). Default 24 h. */
  retentionMs?: number;
  /** Keys delivered concurrently (events of one key always go one after the other). Default 8. */
  concurrency?: number;
  /** Errors of timer runs. Default: a process warning. */
  onError?: (err: unknown) => void;
  /** Called for each failed attempt (for metrics). */
  onFailure?: (event: OutboxRecord, error: unknown, deadLettered: boolean) => void;
  /** Called for each delivered event with the time since it was written, ms (for metrics). */
  onDelivered?: (event: OutboxRecord, lagMs: number) => void;
}

/** What one {@link OutboxDispatcher.runOnce} did. */
export interface DispatchResult {
  readonly delivered: number;
  /** Attempts that failed and will be retried. */
  readonly retried: number;
  readonly deadLettered: number;
  /** Delivered events removed after the retention window. */
  readonly purged: number;
}

interface Row {
  id: number | string;
  topic: string;
  payload: string;
  created_at: number | string;
  event_key: string;
  attempts: number;
}

/**
 * Delivers the upload outbox to sinks: at least once (an event is marked only after every
 * sink accepted it, so a crash in between delivers it again; receivers dedupe by id), in order
 * per key (an event waits while an earlier event of the same file key is undelivered), with
 * exponential backoff and a dead letter after `maxAttempts`. Several dispatchers may run
 * against one database: leases keep them apart. Delivered rows are purged after `retentionMs`.
 *
 * @example
 * ```ts
 * const dispatcher = new OutboxDispatcher({ database, sinks: [{ name: "log", deliver: async (e) => console.log(e) }] });
 * dispatcher.start();
 * await dispatcher.stop();
 * ```
 */
export class OutboxDispatcher {
  readonly #db: Executor;
  readonly #sinks: readonly OutboxSink[];
  readonly #clock: Clock;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #maxAttempts: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #retentionMs: number;
  readonly #concurrency: number;
  readonly #options: OutboxDispatcherOptions;
  readonly #job: BackgroundJob<DispatchResult>;

  constructor(options: OutboxDispatcherOptions) {
    const op = "outboxDispatcher.create";
    this.#db = databaseOption(options, op);
    this.#sinks = Object.freeze([...options.sinks]);
    this.#clock = options.clock ?? systemClock;
    this.#batchSize = positiveInteger(options.batchSize, "batchSize", op, 100);
    this.#leaseMs = positiveInteger(options.leaseMs, "leaseMs", op, 60_000);
    this.#maxAttempts = positiveInteger(options.maxAttempts, "maxAttempts", op, 10);
    this.#baseBackoffMs = positiveInteger(options.baseBackoffMs, "baseBackoffMs", op, 1_000);
    this.#maxBackoffMs = positiveInteger(options.maxBackoffMs, "maxBackoffMs", op, 600_000);
    this.#retentionMs = positiveInteger(options.retentionMs, "retentionMs", op, 24 * 3_600_000);
    this.#concurrency = positiveInteger(options.concurrency, "concurrency", op, 8);
    this.#options = options;
    this.#job = new BackgroundJob({
      name: "outbox dispatcher",
      intervalMs: options.intervalMs ?? 1_000,
      clock: this.#clock,
      run: () => this.#dispatch(),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** Leases due events, delivers them, records the outcomes and purges old delivered rows. */
  runOnce(): Promise<DispatchResult> {
    return this.#job.runOnce();
  }

  /** Runs every `intervalMs` until {@link OutboxDispatcher.stop}. */
  start(): void {
    this.#job.start();
  }

  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void> {
    return this.#job.stop();
  }

  /** Undelivered, not dead-lettered events and the age of the oldest (ms; 0 when none), for lag metrics. */
  async lag(): Promise<{ pending: number; oldestAgeMs: number }> {
    const row = await this.#db.get<{ n: number | string; oldest: number | string | null }>(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM storeroom_upload_outbox WHERE dispatched_at IS NULL",
    );
    const oldest = row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
    return { pending: Number(row?.n ?? 0), oldestAgeMs: oldest === undefined ? 0 : this.#clock.now() - oldest };
  }

  /** Dead-lettered events, newest first (inspection). */
  async deadLetters(limit = 100): Promise<(OutboxRecord & { attempts: number; lastError: string })[]> {
    const rows = await this.#db.all<Row & { last_error: string }>(
      `SELECT id, topic, payload, created_at, event_key, attempts, last_error FROM storeroom_upload_outbox
       WHERE dead_at IS NOT NULL ORDER BY id DESC LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ ...toRecord(r), attempts: r.attempts, lastError: r.last_error }));
  }

  async #dispatch(): Promise<DispatchResult> {
    const now = this.#clock.now();
    const rows = await this.#lease(now);
    const byKey = new Map<string, Row[]>();
    for (const row of rows) {
      const list = byKey.get(row.event_key) ?? [];
      list.push(row);
      byKey.set(row.event_key, list);
    }
    const counts = { delivered: 0, retried: 0, deadLettered: 0 };
    const queues = [...byKey.values()];
    const workers = Array.from({ length: Math.min(this.#concurrency, queues.length) }, async () => {
      for (let queue = queues.shift(); queue !== undefined; queue = queues.shift()) {
        await this.#deliverKey(queue, counts);
      }
    });
    await Promise.all(workers);
    const { changes: purged } = await this.#db.run(
      "DELETE FROM storeroom_upload_outbox WHERE dispatched_at IS NOT NULL AND dead_at IS NULL AND dispatched_at < $1",
      [this.#clock.now() - this.#retentionMs],
    );
    return { ...counts, purged };
  }

  async #lease(now: number): Promise<Row[]> {
    const rows = await this.#db.transaction((tx) =>
      tx.all<Row>(
        `UPDATE storeroom_upload_outbox SET available_at = $1
         WHERE id IN (SELECT o.id FROM storeroom_upload_outbox o
                      WHERE o.dispatched_at IS NULL AND o.available_at <= $2
                        AND NOT EXISTS (SELECT 1 FROM storeroom_upload_outbox p
                                        WHERE p.event_key = o.event_key AND p.dispatched_at IS NULL AND p.id < o.id)
                      ORDER BY o.id LIMIT $3${tx.dialect.skipLocked})
         RETURNING id, topic, payload, created_at, event_key, attempts`,
        [now + this.#leaseMs, now, this.#batchSize],
      ),
    );
    return rows.sort((a, b) => Number(a.id) - Number(b.id));
  }

  async #deliverKey(rows: Row[], counts: { delivered: number; retried: number; deadLettered: number }) {
    for (const [index, row] of rows.entries()) {
      const event = toRecord(row);
      try {
        for (const sink of this.#sinks) await sink.deliver(event);
      } catch (error) {
        const attempts = row.attempts + 1;
        const dead = attempts >= this.#maxAttempts;
        const now = this.#clock.now();
        const message = error instanceof Error ? error.message : String(error);
        if (dead) {
          await this.#db.run(
            `UPDATE storeroom_upload_outbox SET attempts = $1, last_error = $2, dead_at = $3, dispatched_at = $3
             WHERE id = $4`,
            [attempts, message.slice(0, 1000), now, row.id],
          );
          counts.deadLettered++;
        } else {
          const backoff = Math.min(this.#baseBackoffMs * 2 ** (attempts - 1), this.#maxBackoffMs);
          await this.#db.run(
            "UPDATE storeroom_upload_outbox SET attempts = $1, last_error = $2, available_at = $3 WHERE id = $4",
            [attempts, message.slice(0, 1000), now + backoff, row.id],
          );
          counts.retried++;
        }
        this.#options.onFailure?.(event, error, dead);
        if (dead) continue;
        // Later events of this key wait for this one; give their leases back.
        for (const later of rows.slice(index + 1)) {
          await this.#db.run("UPDATE storeroom_upload_outbox SET available_at = $1 WHERE id = $2", [now, later.id]);
        }
        return;
      }
      const now = this.#clock.now();
      await this.#db.run("UPDATE storeroom_upload_outbox SET dispatched_at = $1 WHERE id = $2", [now, row.id]);
      counts.delivered++;
      this.#options.onDelivered?.(event, now - event.createdAt);
    }
  }
}

function toRecord(row: Row): OutboxRecord {
  return {
    id: Number(row.id),
    topic: row.topic,
    payload: JSON.parse(row.payload),
    createdAt: Number(row.created_at),
  } as OutboxRecord;
}
