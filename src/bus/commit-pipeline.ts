import type { Executor } from "../sql/index.js";
import type { AuditLog } from "./audit-log.js";
import type { DeliveryLane } from "./delivery-lane.js";

/** What the writes of one batch collect besides their rows: audit events, lane states, and effects for after the commit. */
export class CommitBatch {
  /** Audit events in the order the ops produced them; appended in the batch's transaction. */
  readonly audit: Uint8Array[] = [];
  readonly #after: (() => void)[] = [];
  readonly #live = new Map<DeliveryLane, boolean>();

  /** Runs `effect` after the batch committed, in the order effects were added; never if it rolls back. */
  after(effect: () => void): void {
    this.#after.push(effect);
  }

  /** Whether `lane` is live as this batch sees it: what an earlier op of the batch set, else its committed state. */
  isLive(lane: DeliveryLane): boolean {
    return this.#live.get(lane) ?? lane.live;
  }

  /** Sets `lane` live or not for the rest of the batch, and for good once it commits. */
  setLive(lane: DeliveryLane, live: boolean): void {
    this.#live.set(lane, live);
  }

  /** Applies lane states, then runs the effects; call once, after the commit. An effect that throws goes to `onError`. */
  apply(onError: (err: unknown) => void): void {
    for (const [lane, live] of this.#live) lane.live = live;
    for (const effect of this.#after) {
      try {
        effect();
      } catch (err) {
        onError(err);
      }
    }
  }
}

/** One unit of work of a batch. */
export interface CommitOp {
  /** Messages it writes, counted against the batch limit (at least 1). */
  readonly weight: number;
  /** Does its writes in the batch's transaction; records audit events, lane states and effects in `batch`, changes nothing else. */
  run(tx: Executor, batch: CommitBatch): Promise<void>;
}

/** Options of {@link CommitPipeline}. */
export interface CommitPipelineOptions {
  /** Runs a function in one transaction. */
  transaction: <T>(fn: (tx: Executor) => Promise<T>) => Promise<T>;
  /** Where the batch's audit events go, inside the same transaction. */
  audit: AuditLog | undefined;
  /** Longest wait for more work before a batch starts (0: until the event loop has read what already arrived). */
  windowMs: number;
  /** Weight at which a batch starts at once and which it does not exceed (unless one op alone is heavier). */
  maxWeight: number;
  /** Receives an effect's fault. */
  onError: (err: unknown) => void;
}

interface Queued {
  readonly op: CommitOp;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit: the writes of many connections run in one transaction. A batch starts once
 * the event loop has read what already arrived (or after `windowMs`, or at once when
 * `maxWeight` is reached) and takes everything queued up to `maxWeight`; work submitted while
 * it commits waits for the next batch. Each op's promise settles only after its batch
 * committed and its effects ran, so nothing is acknowledged before it is durable. When a batch
 * fails, its ops run again one per transaction, so one op's fault fails only that op.
 */
export class CommitPipeline {
  readonly #options: CommitPipelineOptions;
  readonly #queue: Queued[] = [];
  #weight = 0;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #idle: (() => void)[] = [];

  constructor(options: CommitPipelineOptions) {
    this.#options = options;
  }

  /** Queues `op`; resolves once it committed and its effects ran, rejects with its error when it failed alone. */
  submit(op: CommitOp): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ op, resolve, reject });
      this.#weight += Math.max(1, op.weight);
      this.#schedule();
    });
  }

  /** Resolves when nothing is queued or running. */
  drained(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#running || this.#immediate !== undefined) return;
    const start = () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#immediate = undefined;
      void this.#runBatch();
    };
    // setImmediate runs after the event loop's poll phase: frames that already arrived join the batch.
    if (this.#options.windowMs <= 0 || this.#weight >= this.#options.maxWeight) this.#immediate = setImmediate(start);
    else this.#timer ??= setTimeout(start, this.#options.windowMs);
  }

  async #runBatch(): Promise<void> {
    this.#running = true;
    const taken: Queued[] = [];
    let weight = 0;
    for (const next of this.#queue) {
      const w = Math.max(1, next.op.weight);
      if (taken.length > 0 && weight + w > this.#options.maxWeight) break;
      weight += w;
      taken.push(next);
    }
    this.#queue.splice(0, taken.length);
    this.#weight -= weight;
    if (!(await this.#commit(taken)) && taken.length > 1) {
      for (const one of taken) await this.#commit([one]);
    }
    this.#running = false;
    if (this.#queue.length > 0) this.#schedule();
    else for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Commits `ops` in one transaction; false when it failed (a lone op is then rejected). */
  async #commit(ops: Queued[]): Promise<boolean> {
    const batch = new CommitBatch();
    try {
      await this.#options.transaction(async (tx) => {
        for (const q of ops) await q.op.run(tx, batch);
        if (batch.audit.length > 0) await this.#options.audit?.appendMany(batch.audit, { executor: tx });
      });
    } catch (err) {
      if (ops.length === 1) (ops[0] as Queued).reject(err);
      return false;
    }
    batch.apply(this.#options.onError);
    for (const q of ops) q.resolve();
    return true;
  }
}
