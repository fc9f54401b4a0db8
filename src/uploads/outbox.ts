import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { InvalidArgumentError } from "../errors.js";
import { clockOption, databaseOption, functionOption, positiveInteger } from "../internal/option-checks.js";
import type { Executor } from "../sql/index.js";
// For {@link OutboxDispatcher} in the deprecation notes.
import type { OutboxDispatcher } from "./outbox-dispatcher.js";
import { placeholders } from "./sql-lists.js";
import type { OutboxRecord, UploadEvent } from "./upload-events.js";

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  /** Where the outbox table lives (migrated with `uploadsMigrations`). Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Options of {@link Outbox.drain}.
 * @deprecated Use {@link OutboxDispatcher} (per-sink retries, backoff, dead letters, order per key).
 */
export interface DrainOptions {
  /** Events per drain, a positive integer. Default 100. */
  limit?: number;
  /** How long leased events stay invisible to other dispatchers, a positive integer. Default 60 s. */
  leaseMs?: number;
}

/**
 * Options of {@link Outbox.start}.
 * @deprecated Use {@link OutboxDispatcher}.
 */
export interface OutboxPollOptions extends DrainOptions {
  /** Time between drains; `0` disables the timer. Default 1 s. */
  intervalMs?: number;
  /** Receives handler rejections and failed drains. Default: a process warning. */
  onError?: (err: unknown) => void;
}

/** Options of {@link Outbox.listAfter}. */
export interface ListAfterOptions {
  /** Only events of these owners (exact match). */
  owners?: readonly string[];
  /** Only events whose owner starts with one of these. */
  ownerPrefixes?: readonly string[];
  /** Only events written before this time, ms. */
  writtenBefore?: number;
  /** Only events with an id up to this one (a {@link OutboxHorizon}'s `top`). */
  upTo?: number;
  /** Most events returned. Default 100. */
  limit?: number;
}

/**
 * What {@link Outbox.drain} did.
 * @deprecated Use {@link OutboxDispatcher}.
 */
export interface DrainResult {
  /** Events the handler accepted, now marked dispatched. */
  readonly dispatched: number;
  /** The handler's error when it rejected an event; that event and later ones stay undispatched. */
  readonly error?: unknown;
}

/**
 * Where the event log stood at one instant: `top` is the highest committed id; on an engine
 * with concurrent writers, `inFlight` names the transactions then running (one of them may
 * still commit a lower id). Once {@link Outbox.settled} says they all ended, every id up to
 * `top` is final: committed or never to be.
 */
export interface OutboxHorizon {
  readonly top: number;
  readonly inFlight: string;
}

/** Options of {@link Outbox.follow}. */
export interface FollowOptions extends Pick<ListAfterOptions, "owners" | "ownerPrefixes"> {
  /** How often to look for new events, ms: a positive integer (else {@link InvalidArgumentError}). Default 500. */
  pollMs?: number;
  /** Ends the iteration. */
  signal?: AbortSignal;
}

interface OutboxRow {
  id: number;
  topic: string;
  payload: string;
  created_at: number;
}

/** Options of {@link appendEvent}. */
export interface AppendEventOptions {
  /** The caller's transaction (or database) the event is written in. Required. */
  executor: Executor;
  /** The event's creation time in ms since the epoch. Default `Date.now()`. */
  now?: number;
}

/**
 * Writes an event in the caller's transaction; it becomes visible to readers only after
 * commit. Its owner and its file key are kept in columns: event streams are scoped by owner,
 * and the dispatcher delivers the events of one file key in order.
 *
 * @example
 * ```ts
 * await db.transaction((tx) => appendEvent(event, { executor: tx }));
 * ```
 */
export async function appendEvent(event: UploadEvent, options: AppendEventOptions): Promise<void>;
/** @deprecated Pass the event first and `{ executor, now }` as options. */
export async function appendEvent(executor: Executor, now: number, event: UploadEvent): Promise<void>;
export async function appendEvent(
  first: UploadEvent | Executor,
  second: AppendEventOptions | number,
  third?: UploadEvent,
): Promise<void> {
  const positional = typeof second === "number";
  const event = positional ? (third as UploadEvent) : (first as UploadEvent);
  const executor = positional ? (first as Executor) : second.executor;
  const now = positional ? second : (second.now ?? Date.now());
  if (executor === undefined || typeof (executor as Executor).run !== "function") {
    throw new InvalidArgumentError("appendEvent: executor must be a database or transaction", {
      op: "uploads.appendEvent",
    });
  }
  await executor.run(
    `INSERT INTO storeroom_upload_outbox (topic, payload, created_at, available_at, owner, event_key)
     VALUES ($1, $2, $3, $3, $4, $5)`,
    [event.topic, JSON.stringify(event.payload), now, event.payload.owner, event.payload.fileKey],
  );
}

/**
 * The transactional outbox of the uploads module. Stores write events (`file.claimed`,
 * `file.deleted`, `delete.dead_letter`) in the same transaction as the change, so an event
 * exists if and only if its change committed; {@link OutboxDispatcher} delivers them to sinks
 * (at-least-once). This class reads the log (`listAfter`, `pending`, `latestId`).
 *
 * @example
 * ```ts
 * const outbox = new Outbox({ database: db });
 * const recent = await outbox.listAfter(0, { owners: ["acme/users/ada"] });
 * ```
 */
export class Outbox {
  readonly #db: Executor;
  readonly #clock: Clock;
  #job: BackgroundJob<void> | undefined;

  constructor(options: OutboxOptions) {
    this.#db = databaseOption(options, "outbox.create");
    this.#clock = clockOption(options.clock, "outbox.create", systemClock);
  }

  /**
   * Leases up to `limit` undispatched events (in id order; invisible to other dispatchers for
   * `leaseMs`), calls `handler` for each in order and marks it dispatched when it resolves.
   * On the first rejection it stops, releases the events not yet handled (the failed one
   * included) for the next drain and reports the error in the result; it never drops an event.
   *
   * @deprecated Superseded by {@link OutboxDispatcher} (what `storeroom serve` runs): sinks
   * retried and dead-lettered one by one, in order per file key, with per-sink state. Do not
   * mix the two on one database: `drain` marks events dispatched for every sink.
   */
  async drain(handler: (event: OutboxRecord) => Promise<void>, options: DrainOptions = {}): Promise<DrainResult> {
    const limit = positiveInteger(options.limit, "limit", "outbox.drain", 100);
    const leaseMs = positiveInteger(options.leaseMs, "leaseMs", "outbox.drain", 60_000);
    const now = this.#clock.now();
    const rows = await this.#db.all<OutboxRow>(
      // Picked once in a materialized CTE, as in DeleteQueue.lease.
      `WITH picked AS MATERIALIZED (
         SELECT id FROM storeroom_upload_outbox WHERE dispatched_at IS NULL AND available_at <= $2
         ORDER BY id LIMIT $3${this.#db.dialect.skipLocked})
       UPDATE storeroom_upload_outbox SET available_at = $1
       WHERE id IN (SELECT id FROM picked)
       RETURNING id, topic, payload, created_at`,
      [now + leaseMs, now, limit],
    );
    rows.sort((a, b) => a.id - b.id);
    let dispatched = 0;
    for (const row of rows) {
      const record = { id: row.id, topic: row.topic, payload: JSON.parse(row.payload), createdAt: row.created_at };
      try {
        await handler(record as OutboxRecord);
      } catch (error) {
        const rest = rows.slice(dispatched).map((r) => r.id);
        await this.#db.run(
          `UPDATE storeroom_upload_outbox SET available_at = $1 WHERE id IN (${placeholders(rest.length, 2)})`,
          [this.#clock.now(), ...rest],
        );
        return { dispatched, error };
      }
      await this.#db.run("UPDATE storeroom_upload_outbox SET dispatched_at = $1 WHERE id = $2", [
        this.#clock.now(),
        row.id,
      ]);
      dispatched++;
    }
    return { dispatched };
  }

  /**
   * Drains every `intervalMs` (default 1 s) on an unref'd timer until {@link Outbox.stop}.
   * A handler rejection goes to `onError` (default a process warning) and the events are
   * retried on a later tick. Calling it while polling -> {@link InvalidArgumentError}.
   *
   * @deprecated Use {@link OutboxDispatcher.start}.
   */
  start(handler: (event: OutboxRecord) => Promise<void>, options: OutboxPollOptions = {}): void {
    if (this.#job !== undefined)
      throw new InvalidArgumentError("the outbox is already polling", { op: "outbox.start" });
    functionOption(handler, "handler", "outbox.start", true);
    positiveInteger(options.limit, "limit", "outbox.start", 100);
    positiveInteger(options.leaseMs, "leaseMs", "outbox.start", 60_000);
    functionOption(options.onError, "onError", "outbox.start");
    const job = new BackgroundJob<void>({
      name: "outbox",
      intervalMs: checkIntervalMs(options.intervalMs, "intervalMs", "outbox.start", 1_000),
      clock: this.#clock,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      run: async () => {
        const result = await this.drain(handler, options);
        if (result.error !== undefined) throw result.error;
      },
    });
    job.start();
    this.#job = job;
  }

  /**
   * Stops polling and waits for a drain in progress.
   * @deprecated Use {@link OutboxDispatcher.stop}.
   */
  async stop(): Promise<void> {
    const job = this.#job;
    this.#job = undefined;
    await job?.stop();
  }

  /** Undispatched events, oldest first, without leasing them (inspection and tests). */
  async pending(limit = 1000): Promise<OutboxRecord[]> {
    if (!Number.isInteger(limit) || limit <= 0) throw new InvalidArgumentError("limit must be a positive integer");
    const rows = await this.#db.all<OutboxRow>(
      "SELECT id, topic, payload, created_at FROM storeroom_upload_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
      [limit],
    );
    return rows.map(
      (row) =>
        ({ id: row.id, topic: row.topic, payload: JSON.parse(row.payload), createdAt: row.created_at }) as OutboxRecord,
    );
  }

  /**
   * Events with an id above `afterId`, oldest first, whatever their delivery state (event
   * streams read the table directly). `owners` keeps only events whose owner is one of them or
   * starts with one of `ownerPrefixes`; `writtenBefore` keeps only events written before that
   * time (ms), so a reader on an engine with concurrent writers does not pass an id whose
   * transaction has not committed yet.
   */
  async listAfter(afterId: number, options: ListAfterOptions = {}): Promise<OutboxRecord[]> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit <= 0) {
      throw new InvalidArgumentError(`limit must be a positive integer, got ${limit}`, { op: "outbox.listAfter" });
    }
    const params: (string | number)[] = [
      afterId,
      options.writtenBefore ?? Number.MAX_SAFE_INTEGER,
      options.upTo ?? Number.MAX_SAFE_INTEGER,
    ];
    const scopes: string[] = [];
    for (const owner of options.owners ?? []) {
      params.push(owner);
      scopes.push(`owner = $${params.length}`);
    }
    for (const prefix of options.ownerPrefixes ?? []) {
      params.push(prefix.length, prefix);
      scopes.push(`substr(owner, 1, $${params.length - 1}) = $${params.length}`);
    }
    const scoped = options.owners === undefined && options.ownerPrefixes === undefined;
    params.push(limit);
    const rows = await this.#db.all<OutboxRow>(
      `SELECT id, topic, payload, created_at FROM storeroom_upload_outbox
       WHERE id > $1 AND created_at < $2 AND id <= $3 ${scoped ? "" : `AND (${scopes.length === 0 ? "1 = 0" : scopes.join(" OR ")})`}
       ORDER BY id LIMIT $${params.length}`,
      params,
    );
    return rows.map(
      (row) =>
        ({
          id: Number(row.id),
          topic: row.topic,
          payload: JSON.parse(row.payload),
          createdAt: Number(row.created_at),
        }) as OutboxRecord,
    );
  }

  /**
   * The log's {@link OutboxHorizon} now. On PostgreSQL (an engine with concurrent writers) ids
   * come from a sequence at insert time but become visible at commit, so a reader that moved
   * past a visible id could skip a lower one committed later; the horizon records the
   * transactions in progress at the instant `top` was read (the only ones that can still
   * commit an id below it).
   */
  async horizon(): Promise<OutboxHorizon> {
    if (!this.#db.dialect.concurrentWriters) return { top: await this.latestId(), inFlight: "" };
    // One statement, one snapshot: the max id and the snapshot's running transactions agree.
    const row = await this.#db.get<{ top: number | string | null; snap: string }>(
      "SELECT (SELECT max(id) FROM storeroom_upload_outbox) AS top, pg_current_snapshot()::text AS snap",
    );
    return { top: Number(row?.top ?? 0), inFlight: row?.snap ?? "" };
  }

  /** Whether every transaction in progress at `horizon` has ended (committed or rolled back). */
  async settled(horizon: OutboxHorizon): Promise<boolean> {
    if (horizon.inFlight === "") return true;
    const row = await this.#db.get<{ running: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_snapshot_xip($1::pg_snapshot) AS x
                      WHERE pg_xact_status(x) = 'in progress') AS running`,
      [horizon.inFlight],
    );
    return row?.running === false;
  }

  /**
   * The events after `afterId`, in id order, for as long as the caller iterates (until
   * `signal` aborts): what exists first, then new events as they commit. Exact on engines with
   * concurrent writers too: an id is yielded only once every transaction that could still
   * commit a lower one has ended, so no event is skipped or yielded out of order (a
   * transaction left open holds the stream back until it ends).
   */
  async *follow(afterId: number, options: FollowOptions = {}): AsyncGenerator<OutboxRecord> {
    const { pollMs: requestedPollMs, signal, ...scope } = options;
    // 0 or NaN would poll the database without a pause.
    const pollMs = positiveInteger(requestedPollMs, "pollMs", "outbox.follow", 500);
    if (!Number.isSafeInteger(afterId) || afterId < 0) {
      throw new InvalidArgumentError(`afterId must be a non-negative integer, got ${afterId}`, { op: "outbox.follow" });
    }
    let cursor = afterId;
    const stopped = () => signal?.aborted === true;
    const pause = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollMs);
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        }
        signal?.addEventListener("abort", done, { once: true });
      });
    while (!stopped()) {
      const horizon = await this.horizon();
      while (!stopped() && !(await this.settled(horizon))) await pause();
      for (;;) {
        if (stopped()) return;
        const events = await this.listAfter(cursor, { ...scope, upTo: horizon.top, limit: 100 });
        for (const event of events) {
          cursor = event.id;
          yield event;
        }
        if (events.length < 100) break;
      }
      await pause();
    }
  }

  /** The id of the newest event, 0 when there is none. */
  async latestId(): Promise<number> {
    const row = await this.#db.get<{ id: number | string | null }>("SELECT max(id) AS id FROM storeroom_upload_outbox");
    return Number(row?.id ?? 0);
  }

  /** Number of undispatched events, leased ones included (a queue depth for metrics). */
  async countPending(): Promise<number> {
    const row = await this.#db.get<{ n: number | string }>(
      "SELECT count(*) AS n FROM storeroom_upload_outbox WHERE dispatched_at IS NULL",
    );
    return Number(row?.n ?? 0);
  }

  /** Deletes dispatched events older than `before` (ms); returns how many. */
  async purgeDispatched(before: number): Promise<number> {
    const { changes } = await this.#db.run(
      "DELETE FROM storeroom_upload_outbox WHERE dispatched_at IS NOT NULL AND dispatched_at < $1",
      [before],
    );
    return changes;
  }
}
