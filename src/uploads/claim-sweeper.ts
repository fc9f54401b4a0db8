import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import {
  clockOption,
  databaseOption,
  functionOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { ClaimStore } from "./claim-store.js";
import { DeleteQueue } from "./delete-queue.js";
import type { UploadClaim } from "./upload-claim.js";

/** Options of {@link ClaimSweeper}. */
export interface ClaimSweeperOptions {
  /** Database migrated with `uploadsMigrations`. Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** Where the claimed objects live; consulted to recover claims whose object was finalized. */
  objects: ObjectStore;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Time between runs after {@link ClaimSweeper.start}; `0` disables the timer. Default 5 min. */
  intervalMs?: number;
  /** Expired claims handled per run, a positive integer. Default 200. */
  batchSize?: number;
  /** Receives errors of timer-driven runs. Default: a process warning. */
  onError?: (err: unknown) => void;
}

/** What one {@link ClaimSweeper.runOnce} did. */
export interface SweepResult {
  /** Expired pending claims deleted, their objects queued for deletion (reason `claim_expired`). */
  readonly expired: readonly UploadClaim[];
  /** Expired pending claims whose object was already complete, flipped to `uploaded` instead. */
  readonly recovered: readonly UploadClaim[];
}

/**
 * Reaps pending claims past their TTL. Per tick, inside ONE transaction: locks the expired
 * pending claims (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so a concurrent `completeUpload`
 * either finishes first or waits), queues their objects for deletion with the multipart upload
 * id (so the session gets aborted) and deletes the claims (parts cascade). A claim whose
 * object already exists with the declared size (a completion that crashed before marking the
 * claim) is recovered to `uploaded` instead. Uploaded claims are never swept.
 *
 * @example
 * ```ts
 * const sweeper = new ClaimSweeper({ database: db, objects });
 * sweeper.start(); // every 5 min; `await sweeper.stop()` on shutdown
 * ```
 */
export class ClaimSweeper {
  readonly #db: Executor;
  readonly #objects: ObjectStore;
  readonly #clock: Clock;
  readonly #claims: ClaimStore;
  readonly #queue: DeleteQueue;
  readonly #batchSize: number;
  readonly #job: BackgroundJob<SweepResult>;

  constructor(options: ClaimSweeperOptions) {
    const op = "claimSweeper.create";
    this.#db = databaseOption(options, op);
    this.#objects = objectStoreOption(options.objects, "objects", op);
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#claims = new ClaimStore({ database: this.#db, clock: this.#clock });
    this.#queue = new DeleteQueue({ database: this.#db, clock: this.#clock });
    this.#batchSize = positiveInteger(options.batchSize, "batchSize", op, 200);
    this.#job = new BackgroundJob({
      name: "claim sweeper",
      intervalMs: checkIntervalMs(options.intervalMs, "intervalMs", op, 5 * 60_000),
      clock: this.#clock,
      ...(options.onError === undefined ? {} : { onError: functionOption(options.onError, "onError", op, true) }),
      run: () => this.#sweep(),
    });
  }

  /**
   * Sweeps one batch now (after a run in progress). If the transaction fails nothing is
   * dropped and the error is thrown.
   */
  runOnce(): Promise<SweepResult> {
    return this.#job.runOnce();
  }

  async #sweep(): Promise<SweepResult> {
    const now = this.#clock.now();
    // Object checks happen before the transaction so it never holds locks across backend calls.
    const candidates = await this.#claims.scanExpired(now, this.#batchSize);
    if (candidates.length === 0) return { expired: [], recovered: [] };
    const finalized = new Set<string>();
    for (const claim of candidates) {
      const info = await this.#objects.head(claim.key);
      if (info !== null && info.size === claim.size) finalized.add(claim.id);
    }
    return this.#db.transaction(async (tx) => {
      const locked = await this.#claims.lockExpired(now, this.#batchSize, { executor: tx });
      const expired: UploadClaim[] = [];
      const recovered: UploadClaim[] = [];
      for (const claim of locked) {
        if (finalized.has(claim.id)) {
          await this.#claims.markUploaded(claim.id, { executor: tx });
          recovered.push({ ...claim, status: "uploaded" });
        } else if (candidates.some((c) => c.id === claim.id)) {
          expired.push(claim);
        }
      }
      await this.#queue.enqueue(
        expired.map((c) => ({
          key: c.key,
          reason: "claim_expired" as const,
          uploadId: c.uploadId,
          nextAttemptAt: now,
          owner: c.createdBy,
        })),
        { executor: tx },
      );
      await this.#claims.deleteByIds(
        expired.map((c) => c.id),
        { executor: tx },
      );
      return { expired, recovered };
    });
  }

  /** Runs a sweep every interval on an unref'd timer. Idempotent; nothing with `intervalMs: 0`. */
  start(): void {
    this.#job.start();
  }

  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void> {
    return this.#job.stop();
  }
}
