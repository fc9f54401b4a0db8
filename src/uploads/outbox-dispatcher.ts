import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { InvalidArgumentError } from "../errors.js";
import {
  clockOption,
  databaseOption,
  functionOption,
  nonEmptyString,
  objectOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { Executor } from "../sql/index.js";
import { placeholders } from "./sql-lists.js";
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
  /**
   * Every event goes to every sink; with none, events are marked dispatched at once (readers of
   * the table still see them). Names must be unique and stable: delivery state is kept by name.
   */
  sinks: readonly OutboxSink[];
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Time between runs of {@link OutboxDispatcher.start}; `0` disables the timer. Default 1000. */
  intervalMs?: number;
  /** Events leased per run. Default 100. */
  batchSize?: number;
  /** How long leased events stay invisible to other dispatchers. Default 60 s. */
  leaseMs?: number;
  /** Attempts of one sink before its delivery of an event is dead-lettered (never retried; the event is kept). Default 10. */
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
  /** Called for each failed attempt of a sink (for metrics). */
  onFailure?: (event: OutboxRecord, error: unknown, deadLettered: boolean, sink: string) => void;
  /** Called for each delivery to a sink with the time since the event was written, ms (for metrics). */
  onDelivered?: (event: OutboxRecord, lagMs: number, sink: string) => void;
}

/** What one {@link OutboxDispatcher.runOnce} did, counted per event and sink. */
export interface DispatchResult {
  readonly delivered: number;
  /** Attempts that failed and will be retried. */
  readonly retried: number;
  readonly deadLettered: number;
  /** Delivered events removed after the retention window. */
  readonly purged: number;
}

/** A delivery of one event that a sink gave up on. */
export type DeadDelivery = OutboxRecord & { sink: string; attempts: number; lastError: string };

interface Row {
  id: number | string;
  topic: string;
  payload: string;
  created_at: number | string;
  event_key: string;
  attempts: number | string;
}

type Counts = { delivered: number; retried: number; deadLettered: number };

/**
 * Delivers the upload outbox to sinks: at least once (a delivery is marked only after the sink
 * accepted it, so a crash in between delivers it again; receivers dedupe by id), in order per
 * key and sink (an event waits while an earlier event of the same file key is undelivered to
 * that sink). Each sink has its own delivery state per event: a failing sink backs off
 * exponentially and dead-letters after `maxAttempts` on its own, while the other sinks go on.
 * An event is dispatched once every sink delivered or dead-lettered it. Several dispatchers
 * may run against one database: per-sink leases keep them apart. Delivered rows are purged
 * after `retentionMs`; events some sink dead-lettered are kept.
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
    if (!Array.isArray(options.sinks)) {
      throw new InvalidArgumentError("sinks must be an array of OutboxSink (an object with name and deliver())", {
        op,
      });
    }
    this.#sinks = Object.freeze(
      options.sinks.map((sink, i) => {
        objectOption(sink, `sinks[${i}]`, op, "an OutboxSink", ["deliver"]);
        nonEmptyString(sink.name, `sinks[${i}].name`, op);
        return sink;
      }),
    );
    const names = this.#sinks.map((sink) => sink.name);
    if (new Set(names).size !== names.length) {
      throw new InvalidArgumentError(`sinks must have unique names, got ${names.join(", ")}`, { op });
    }
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#batchSize = positiveInteger(options.batchSize, "batchSize", op, 100);
    this.#leaseMs = positiveInteger(options.leaseMs, "leaseMs", op, 60_000);
    this.#maxAttempts = positiveInteger(options.maxAttempts, "maxAttempts", op, 10);
    this.#baseBackoffMs = positiveInteger(options.baseBackoffMs, "baseBackoffMs", op, 1_000);
    this.#maxBackoffMs = positiveInteger(options.maxBackoffMs, "maxBackoffMs", op, 600_000);
    this.#retentionMs = positiveInteger(options.retentionMs, "retentionMs", op, 24 * 3_600_000);
    this.#concurrency = positiveInteger(options.concurrency, "concurrency", op, 8);
    functionOption(options.onError, "onError", op);
    functionOption(options.onFailure, "onFailure", op);
    functionOption(options.onDelivered, "onDelivered", op);
    this.#options = options;
    this.#job = new BackgroundJob({
      name: "outbox dispatcher",
      intervalMs: checkIntervalMs(options.intervalMs, "intervalMs", op, 1_000),
      clock: this.#clock,
      run: () => this.#dispatch(),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** Leases due deliveries, delivers them, records the outcomes and purges old delivered rows. */
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

  /** Events not yet dispatched to every sink and the age of the oldest (ms; 0 when none), for lag metrics. */
  async lag(): Promise<{ pending: number; oldestAgeMs: number }> {
    const row = await this.#db.get<{ n: number | string; oldest: number | string | null }>(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM storeroom_upload_outbox WHERE dispatched_at IS NULL",
    );
    const oldest = row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
    return { pending: Number(row?.n ?? 0), oldestAgeMs: oldest === undefined ? 0 : this.#clock.now() - oldest };
  }

  /** Dead-lettered deliveries (event and sink), newest event first (inspection). */
  async deadLetters(limit = 100): Promise<DeadDelivery[]> {
    const rows = await this.#db.all<Row & { sink: string; last_error: string }>(
      `SELECT o.id, o.topic, o.payload, o.created_at, o.event_key, d.sink, d.attempts, d.last_error
       FROM storeroom_upload_deliveries d JOIN storeroom_upload_outbox o ON o.id = d.event_id
       WHERE d.dead_at IS NOT NULL ORDER BY o.id DESC, d.sink LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ ...toRecord(r), sink: r.sink, attempts: Number(r.attempts), lastError: r.last_error }));
  }

  async #dispatch(): Promise<DispatchResult> {
    const counts: Counts = { delivered: 0, retried: 0, deadLettered: 0 };
    if (this.#sinks.length === 0) {
      await this.#db.run("UPDATE storeroom_upload_outbox SET dispatched_at = $1 WHERE dispatched_at IS NULL", [
        this.#clock.now(),
      ]);
    }
    const touched = new Set<number>();
    // Sinks run side by side: a slow or failing one never delays another.
    await Promise.all(this.#sinks.map((sink) => this.#dispatchSink(sink, counts, touched)));
    await this.#markDispatched([...touched]);
    return { ...counts, purged: await this.#purge() };
  }

  async #dispatchSink(sink: OutboxSink, counts: Counts, touched: Set<number>): Promise<void> {
    const rows = await this.#lease(sink.name, this.#clock.now());
    const byKey = new Map<string, Row[]>();
    for (const row of rows) {
      touched.add(Number(row.id));
      const list = byKey.get(row.event_key) ?? [];
      list.push(row);
      byKey.set(row.event_key, list);
    }
    const queues = [...byKey.values()];
    const workers = Array.from({ length: Math.min(this.#concurrency, queues.length) }, async () => {
      for (let queue = queues.shift(); queue !== undefined; queue = queues.shift()) {
        await this.#deliverKey(sink, queue, counts);
      }
    });
    await Promise.all(workers);
  }

  /** Due events of `sink` whose earlier events of the same key it is done with, leased to this run. */
  async #lease(sink: string, now: number): Promise<Row[]> {
    const rows = await this.#db.transaction(async (tx) => {
      const due = await tx.all<Row>(
        `SELECT o.id, o.topic, o.payload, o.created_at, o.event_key, COALESCE(d.attempts, 0) AS attempts
         FROM storeroom_upload_outbox o
         LEFT JOIN storeroom_upload_deliveries d ON d.sink = $1 AND d.event_id = o.id
         WHERE o.dispatched_at IS NULL AND o.available_at <= $2
           AND (d.event_id IS NULL OR (d.delivered_at IS NULL AND d.dead_at IS NULL AND d.available_at <= $2))
           AND NOT EXISTS (SELECT 1 FROM storeroom_upload_outbox p
                           LEFT JOIN storeroom_upload_deliveries q ON q.sink = $1 AND q.event_id = p.id
                           WHERE p.event_key = o.event_key AND p.id < o.id AND p.dispatched_at IS NULL
                             AND q.delivered_at IS NULL AND q.dead_at IS NULL)
         ORDER BY o.id LIMIT $3`,
        [sink, now, this.#batchSize],
      );
      const leased: Row[] = [];
      for (const row of due) {
        // Another dispatcher may have leased it since the read: only a row this upsert took is ours.
        const taken = await tx.get(
          `INSERT INTO storeroom_upload_deliveries (sink, event_id, available_at) VALUES ($1, $2, $3)
           ON CONFLICT (sink, event_id) DO UPDATE SET available_at = excluded.available_at
           WHERE storeroom_upload_deliveries.available_at <= $4 AND storeroom_upload_deliveries.delivered_at IS NULL
             AND storeroom_upload_deliveries.dead_at IS NULL
           RETURNING event_id`,
          [sink, row.id, now + this.#leaseMs, now],
        );
        if (taken !== undefined) leased.push(row);
      }
      return leased;
    });
    return rows.sort((a, b) => Number(a.id) - Number(b.id));
  }

  async #deliverKey(sink: OutboxSink, rows: Row[], counts: Counts): Promise<void> {
    for (const [index, row] of rows.entries()) {
      const event = toRecord(row);
      try {
        await sink.deliver(event);
      } catch (error) {
        const attempts = Number(row.attempts) + 1;
        const dead = attempts >= this.#maxAttempts;
        const now = this.#clock.now();
        const message = (error instanceof Error ? error.message : String(error)).slice(0, 1000);
        if (dead) {
          await this.#db.transaction(async (tx) => {
            await tx.run(
              `UPDATE storeroom_upload_deliveries SET attempts = $1, last_error = $2, dead_at = $3
               WHERE sink = $4 AND event_id = $5`,
              [attempts, message, now, sink.name, row.id],
            );
            await tx.run("UPDATE storeroom_upload_outbox SET dead_at = $1 WHERE id = $2", [now, row.id]);
          });
          counts.deadLettered++;
        } else {
          const backoff = Math.min(this.#baseBackoffMs * 2 ** (attempts - 1), this.#maxBackoffMs);
          await this.#db.run(
            `UPDATE storeroom_upload_deliveries SET attempts = $1, last_error = $2, available_at = $3
             WHERE sink = $4 AND event_id = $5`,
            [attempts, message, now + backoff, sink.name, row.id],
          );
          counts.retried++;
        }
        this.#options.onFailure?.(event, error, dead, sink.name);
        if (dead) continue;
        // Later events of this key wait for this one at this sink; give their leases back.
        const later = rows.slice(index + 1).map((r) => r.id);
        if (later.length > 0) {
          await this.#db.run(
            `UPDATE storeroom_upload_deliveries SET available_at = $1
             WHERE sink = $2 AND event_id IN (${placeholders(later.length, 3)})`,
            [now, sink.name, ...later],
          );
        }
        return;
      }
      const now = this.#clock.now();
      await this.#db.run("UPDATE storeroom_upload_deliveries SET delivered_at = $1 WHERE sink = $2 AND event_id = $3", [
        now,
        sink.name,
        row.id,
      ]);
      counts.delivered++;
      this.#options.onDelivered?.(event, now - event.createdAt, sink.name);
    }
  }

  /** Events every configured sink delivered or dead-lettered are dispatched. */
  async #markDispatched(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    const names = this.#sinks.map((sink) => sink.name);
    const params = [this.#clock.now(), names.length, ...names, ...ids];
    await this.#db.run(
      `UPDATE storeroom_upload_outbox SET dispatched_at = $1
       WHERE dispatched_at IS NULL AND id IN (${placeholders(ids.length, 3 + names.length)})
         AND (SELECT count(*) FROM storeroom_upload_deliveries d
              WHERE d.event_id = storeroom_upload_outbox.id AND d.sink IN (${placeholders(names.length, 3)})
                AND (d.delivered_at IS NOT NULL OR d.dead_at IS NOT NULL)) = $2`,
      params,
    );
  }

  async #purge(): Promise<number> {
    return this.#db.transaction(async (tx) => {
      const old = (
        await tx.all<{ id: number | string }>(
          `SELECT id FROM storeroom_upload_outbox
           WHERE dispatched_at IS NOT NULL AND dead_at IS NULL AND dispatched_at < $1 LIMIT 1000`,
          [this.#clock.now() - this.#retentionMs],
        )
      ).map((r) => r.id);
      if (old.length === 0) return 0;
      const list = placeholders(old.length);
      await tx.run(`DELETE FROM storeroom_upload_deliveries WHERE event_id IN (${list})`, old);
      return (await tx.run(`DELETE FROM storeroom_upload_outbox WHERE id IN (${list})`, old)).changes;
    });
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
