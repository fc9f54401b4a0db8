import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { isStoreError } from "../errors.js";
import {
  clockOption,
  databaseOption,
  functionOption,
  objectOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { DeleteQueue } from "./delete-queue.js";
import { appendEvent } from "./outbox.js";
import type { PendingDelete } from "./pending-delete.js";

/** Options of {@link DeleteWorker}. Every number is a positive integer unless said otherwise. */
export interface DeleteWorkerOptions {
  /** Database migrated with `uploadsMigrations`. Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** The backend to delete from. */
  objects: ObjectStore;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Use this queue instance (e.g. an instrumented one); default a new `DeleteQueue` over `database`. */
  queue?: DeleteQueue;
  /** Time between runs after {@link DeleteWorker.start}; `0` disables the timer. Default 5 min. */
  intervalMs?: number;
  /** Rows leased per run. Default 100. */
  batchSize?: number;
  /** How long leased rows stay invisible to other workers. Default 5 min. */
  leaseMs?: number;
  /** Deletes in flight at once. Default 8. */
  concurrency?: number;
  /** Attempts before a row is dead-lettered. Default 12. */
  maxAttempts?: number;
  /** First backoff step; attempt n waits `baseBackoffMs * 2^min(n, 7)`. Default 30 s. */
  baseBackoffMs?: number;
  /** Backoff cap. Default 1 h. */
  maxBackoffMs?: number;
  /** Receives errors of timer-driven runs. Default: a process warning. */
  onError?: (err: unknown) => void;
}

/** The outcome of one leased row. */
export interface DeleteOutcome {
  readonly id: string;
  readonly key: string;
  readonly status: "deleted" | "deferred" | "dead_letter";
  /** The backend error of a deferred or dead-lettered row. */
  readonly error?: unknown;
}

/** What one {@link DeleteWorker.runOnce} did. */
export interface DeleteRunResult {
  readonly leased: number;
  /**
   * One outcome per leased row, except a row whose delete failed after its lease ran out and
   * that another worker had finished (deleted or dead-lettered) by then: it is no longer this
   * worker's to report.
   */
  readonly results: readonly DeleteOutcome[];
}

/** Backoff before attempt `attempt` (1-based): `base * 2^min(attempt, 7)`, capped. 30 s base: 1, 2, 4, ... 32 min, then 1 h. */
export function deleteBackoffMs(attempt: number, baseMs = 30_000, maxMs = 3_600_000): number {
  return Math.min(baseMs * 2 ** Math.min(Math.max(attempt, 0), 7), maxMs);
}

/** Dead-letter classification of a backend error. */
export function classifyDeleteError(err: unknown): "access_denied" | "not_found" | "transient" {
  if (isStoreError(err, "ACCESS_DENIED")) return "access_denied";
  if (isStoreError(err, "NOT_FOUND")) return "not_found";
  return "transient";
}

/**
 * Drains the {@link DeleteQueue}: leases due rows, aborts the multipart session of rows that
 * carry one, deletes the object (a missing object counts as success), then marks the row done
 * and writes `file.deleted` in one transaction. A failure defers the row with exponential
 * backoff; at the last attempt the row is dead-lettered (retired, with a `delete.dead_letter`
 * event). A crashed worker's rows reappear when their lease ends.
 *
 * @example
 * ```ts
 * const worker = new DeleteWorker({ database: db, objects });
 * worker.start(); // every 5 min
 * await worker.runOnce(); // or drive it yourself (tests: with a ManualClock)
 * ```
 */
export class DeleteWorker {
  readonly #db: Executor;
  readonly #objects: ObjectStore;
  readonly #clock: Clock;
  readonly #queue: DeleteQueue;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #concurrency: number;
  readonly #maxAttempts: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #job: BackgroundJob<DeleteRunResult>;

  constructor(options: DeleteWorkerOptions) {
    const op = "deleteWorker.create";
    this.#db = databaseOption(options, op);
    this.#objects = objectStoreOption(options.objects, "objects", op);
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#queue =
      options.queue === undefined
        ? new DeleteQueue({ database: this.#db, clock: this.#clock })
        : objectOption(options.queue, "queue", op, "a DeleteQueue", ["lease", "done", "defer", "deadLetter"]);
    this.#batchSize = positiveInteger(options.batchSize, "batchSize", op, 100);
    this.#leaseMs = positiveInteger(options.leaseMs, "leaseMs", op, 5 * 60_000);
    this.#concurrency = positiveInteger(options.concurrency, "concurrency", op, 8);
    this.#maxAttempts = positiveInteger(options.maxAttempts, "maxAttempts", op, 12);
    this.#baseBackoffMs = positiveInteger(options.baseBackoffMs, "baseBackoffMs", op, 30_000);
    this.#maxBackoffMs = positiveInteger(options.maxBackoffMs, "maxBackoffMs", op, 3_600_000);
    this.#job = new BackgroundJob({
      name: "delete worker",
      intervalMs: checkIntervalMs(options.intervalMs, "intervalMs", op, 5 * 60_000),
      clock: this.#clock,
      ...(options.onError === undefined ? {} : { onError: functionOption(options.onError, "onError", op, true) }),
      run: () => this.#drain(),
    });
  }

  /** Leases one batch and processes it, at most `concurrency` rows at a time (after a run in progress). */
  runOnce(): Promise<DeleteRunResult> {
    return this.#job.runOnce();
  }

  async #drain(): Promise<DeleteRunResult> {
    const rows = await this.#queue.lease(this.#clock.now(), this.#batchSize, this.#leaseMs);
    const results: (DeleteOutcome | undefined)[] = new Array(rows.length);
    let next = 0;
    const lane = async () => {
      while (next < rows.length) {
        const i = next++;
        results[i] = await this.#process(rows[i] as PendingDelete);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, rows.length) }, lane));
    return { leased: rows.length, results: results.filter((r): r is DeleteOutcome => r !== undefined) };
  }

  async #process(row: PendingDelete): Promise<DeleteOutcome | undefined> {
    try {
      if (row.uploadId !== "") await this.#objects.abortMultipart(row.key, row.uploadId);
      await this.#objects.delete(row.key);
    } catch (error) {
      return this.#fail(row, error);
    }
    await this.#db.transaction(async (tx) => {
      if ((await this.#queue.done([row.id], { executor: tx })) === 1) {
        await appendEvent(
          {
            topic: "file.deleted",
            payload: { fileKey: row.key, reason: row.reason, owner: row.owner },
          },
          { executor: tx, now: this.#clock.now() },
        );
      }
    });
    return { id: row.id, key: row.key, status: "deleted" };
  }

  async #fail(row: PendingDelete, error: unknown): Promise<DeleteOutcome | undefined> {
    const attempt = row.attempts + 1;
    const lastError = error instanceof Error ? error.message : String(error);
    try {
      if (attempt >= this.#maxAttempts) {
        await this.#queue.deadLetter(row.id, { lastError, errorClass: classifyDeleteError(error) });
        return { id: row.id, key: row.key, status: "dead_letter", error };
      }
      const wait = deleteBackoffMs(attempt, this.#baseBackoffMs, this.#maxBackoffMs);
      await this.#queue.defer(row.id, this.#clock.now() + wait, { lastError });
      return { id: row.id, key: row.key, status: "deferred", error };
    } catch (err) {
      // The lease ran out while the backend call hung and another worker finished the row.
      if (isStoreError(err, "NOT_FOUND")) return undefined;
      throw err;
    }
  }

  /** Runs a batch every interval on an unref'd timer. Idempotent; nothing with `intervalMs: 0`. */
  start(): void {
    this.#job.start();
  }

  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void> {
    return this.#job.stop();
  }
}
