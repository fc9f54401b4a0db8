import { randomBytes } from "node:crypto";
import { BackgroundJob } from "../background-job.js";
import type { Clock } from "../clock.js";
import { BusyError, ConflictError } from "../errors.js";
import type { Executor } from "../sql/index.js";

/** A lease on one resumable upload, held by one append (or status read) of one process. */
export interface AppendLease {
  /** Aborts when another process asks for the upload, the lease was lost, or `stopWith` aborted. */
  readonly signal: AbortSignal;
  /**
   * Checks, inside `executor`'s transaction, that the lease is still ours and extends it;
   * lost -> {@link ConflictError} (the caller records nothing).
   */
  fence(executor: Executor): Promise<void>;
  /** Gives the upload up (waiters take it at once). */
  release(): Promise<void>;
}

/**
 * Keeps processes that share the control database from appending to one upload at once. The
 * lease lives on the upload's offsets row (holder, expiry, wanted flag): a holder renews it
 * every `leaseMs / 4` (at most every second) and stops when someone else set `wanted`; a
 * newcomer sets `wanted` and takes the lease once it is released or expired, so a holder that
 * died (SIGKILL) delays the next append by at most `leaseMs`. Every record of a holder is
 * fenced by the lease, so a holder that lost it (paused past its expiry) records nothing.
 */
export class AppendLeases {
  readonly #db: Executor;
  readonly #clock: Clock;
  readonly #leaseMs: number;

  constructor(db: Executor, clock: Clock, leaseMs: number) {
    this.#db = db;
    this.#clock = clock;
    this.#leaseMs = leaseMs;
  }

  /**
   * Takes the lease of `claimId`, asking the current holder to stop first. Not free within
   * `leaseMs` plus a second (real time) -> {@link BusyError}. The lease's signal also follows
   * `stopWith` (the in-process lock's signal).
   */
  async acquire(claimId: string, op: string, stopWith?: AbortSignal): Promise<AppendLease> {
    const token = randomBytes(12).toString("hex");
    await this.#db.run(
      "INSERT INTO storeroom_upload_offsets (claim_id, upload_offset, tail, metadata) VALUES ($1, 0, NULL, '') ON CONFLICT (claim_id) DO NOTHING",
      [claimId],
    );
    const deadline = performance.now() + this.#leaseMs + 1_000;
    for (let delay = 2; !(await this.#take(claimId, token)); delay = Math.min(delay * 2, 25)) {
      if (performance.now() > deadline) {
        throw new BusyError(`upload ${claimId} is being written by another process`, { op });
      }
      await this.#db.run(
        "UPDATE storeroom_upload_offsets SET lease_wanted = 1 WHERE claim_id = $1 AND lease_holder IS NOT NULL",
        [claimId],
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    const lease = this.#held(claimId, token, op);
    if (stopWith?.aborted === true) lease.stop();
    else stopWith?.addEventListener("abort", lease.stop, { once: true });
    return lease;
  }

  async #take(claimId: string, token: string): Promise<boolean> {
    const now = this.#clock.now();
    const { changes } = await this.#db.run(
      `UPDATE storeroom_upload_offsets SET lease_holder = $1, lease_expires_at = $2, lease_wanted = 0
       WHERE claim_id = $3 AND (lease_holder IS NULL OR lease_expires_at <= $4)`,
      [token, now + this.#leaseMs, claimId, now],
    );
    return changes === 1;
  }

  #held(claimId: string, token: string, op: string): AppendLease & { stop(): void } {
    const controller = new AbortController();
    const renew = async (executor: Executor): Promise<boolean> => {
      const row = await executor.get<{ lease_wanted: number | string }>(
        `UPDATE storeroom_upload_offsets SET lease_expires_at = $1 WHERE claim_id = $2 AND lease_holder = $3
         RETURNING lease_wanted`,
        [this.#clock.now() + this.#leaseMs, claimId, token],
      );
      if (row === undefined) return false;
      if (Number(row.lease_wanted) !== 0) controller.abort();
      return true;
    };
    const renewal = new BackgroundJob({
      name: `upload ${claimId} lease renewal`,
      intervalMs: Math.max(1, Math.floor(Math.min(this.#leaseMs / 4, 1_000))),
      clock: this.#clock,
      run: async () => {
        if (!(await renew(this.#db))) controller.abort();
      },
      // A failed renewal is retried on the next run; fence() decides before anything is recorded.
      onError: () => undefined,
    });
    renewal.start();
    return {
      signal: controller.signal,
      stop: () => controller.abort(),
      fence: async (executor) => {
        if (!(await renew(executor))) {
          controller.abort();
          throw new ConflictError(`upload ${claimId} was taken over by another process`, { op });
        }
      },
      release: async () => {
        await renewal.stop();
        await this.#db.run(
          "UPDATE storeroom_upload_offsets SET lease_holder = NULL, lease_expires_at = NULL WHERE claim_id = $1 AND lease_holder = $2",
          [claimId, token],
        );
      },
    };
  }
}
