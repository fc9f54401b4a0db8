import { type Clock, systemClock } from "../clock.js";
import type { ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { ClaimStore } from "./claim-store.js";
import { DeleteQueue } from "./delete-queue.js";
import type { UploadClaim } from "./upload-claim.js";
import { effective, WorkerTimer, warnWorkerError } from "./worker-timer.js";

/** Options of {@link ClaimSweeper}. Numbers <= 0 mean the default. */
export interface ClaimSweeperOptions {
  /** Database migrated with `uploadsMigrations`. */
  db: Executor;
  /** Where the claimed objects live; consulted to recover claims whose object was finalised. */
  objects: ObjectStore;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Time between ticks of {@link ClaimSweeper.start}. Default 5 min. */
  intervalMs?: number;
  /** Expired claims handled per tick. Default 200. */
  batchSize?: number;
  /** Receives errors of timer ticks. Default: `process.emitWarning`. */
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
 * const sweeper = new ClaimSweeper({ db, objects });
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
  readonly #timer: WorkerTimer;

  constructor(options: ClaimSweeperOptions) {
    this.#db = options.db;
    this.#objects = options.objects;
    this.#clock = options.clock ?? systemClock;
    this.#claims = new ClaimStore({ db: options.db, clock: this.#clock });
    this.#queue = new DeleteQueue({ db: options.db, clock: this.#clock });
    this.#batchSize = Math.floor(effective(options.batchSize, 200));
    this.#timer = new WorkerTimer(
      effective(options.intervalMs, 5 * 60_000),
      () => this.runOnce(),
      options.onError ?? warnWorkerError("claim sweeper"),
    );
  }

  /** Sweeps one batch now. If the transaction fails nothing is dropped and the error is thrown. */
  async runOnce(): Promise<SweepResult> {
    const now = this.#clock.now();
    // Object checks happen before the transaction so it never holds locks across backend calls.
    const candidates = await this.#claims.scanExpired(now, this.#batchSize);
    if (candidates.length === 0) return { expired: [], recovered: [] };
    const finalised = new Set<string>();
    for (const claim of candidates) {
      const info = await this.#objects.head(claim.key);
      if (info !== null && info.size === claim.size) finalised.add(claim.id);
    }
    return this.#db.transaction(async (tx) => {
      const locked = await this.#claims.lockExpired(now, this.#batchSize, { executor: tx });
      const expired: UploadClaim[] = [];
      const recovered: UploadClaim[] = [];
      for (const claim of locked) {
        if (finalised.has(claim.id)) {
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

  /** Runs {@link ClaimSweeper.runOnce} every interval on an unref'd timer. Idempotent. */
  start(): void {
    this.#timer.start();
  }

  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void> {
    return this.#timer.stop();
  }
}
