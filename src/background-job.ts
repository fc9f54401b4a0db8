import { type Clock, isSchedulingClock, type SchedulingClock, systemClock } from "./clock.js";
import { InvalidArgumentError } from "./errors.js";

/** The longest delay Node.js timers accept (2^31 - 1 ms, about 24.8 days). */
export const MAX_INTERVAL_MS = 2_147_483_647;

/** What started a run: the job's timer, or a {@link BackgroundJob.runOnce} call. */
export type JobTrigger = "timer" | "call";

/** Options of {@link BackgroundJob}. */
export interface BackgroundJobOptions<T> {
  /** Names the job in the default error report, e.g. `"state purge"`. */
  name: string;
  /** One run of the work; `trigger` tells a timer-driven run from a {@link BackgroundJob.runOnce} call. */
  run: (trigger: JobTrigger) => Promise<T>;
  /**
   * Milliseconds from the end of one timer-driven run to the start of the next (runs never
   * overlap). `0` disables the timer: {@link BackgroundJob.start} does nothing and only
   * {@link BackgroundJob.runOnce} runs the work. Must be an integer in 0..2^31-1.
   */
  intervalMs: number;
  /**
   * Receives the error of every timer-driven run that failed; the timer keeps going.
   * ({@link BackgroundJob.runOnce} rejects with its error instead.) Default: a process warning
   * naming the job.
   */
  onError?: (err: unknown) => void;
  /**
   * Schedules the runs when it is a {@link SchedulingClock} (e.g. a {@link ManualScheduler} in
   * tests); any other clock leaves scheduling to unref'd Node.js timers. Default {@link systemClock}.
   */
  clock?: Clock;
}

/**
 * The one way storeroom runs periodic work (expiry purges, sweepers, workers, reapers,
 * checkpoints). Runs never overlap, timers never keep the process alive, errors of timer runs
 * go to one `onError`, and tests drive the work with {@link BackgroundJob.runOnce} or a
 * {@link ManualScheduler}.
 *
 * @example
 * ```ts
 * const purge = new BackgroundJob({ name: "purge", intervalMs: 60_000, run: () => store.purgeExpired() });
 * purge.start();
 * await purge.runOnce(); // run now, after a run in progress
 * await purge.stop(); // on shutdown: cancels the timer, waits for a run in progress
 * ```
 */
export class BackgroundJob<T = unknown> {
  readonly #name: string;
  readonly #run: (trigger: JobTrigger) => Promise<T>;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #clock: SchedulingClock;
  #cancel: (() => void) | undefined;
  #started = false;
  #tail: Promise<unknown> = Promise.resolve();
  #running = 0;

  constructor(options: BackgroundJobOptions<T>) {
    if (typeof options.run !== "function") {
      throw new InvalidArgumentError("run must be a function", { op: "job.create" });
    }
    this.#name = options.name;
    this.#run = options.run;
    this.#intervalMs = checkIntervalMs(options.intervalMs, "intervalMs", "job.create");
    this.#onError = options.onError ?? warnJobError(options.name);
    const clock = options.clock ?? systemClock;
    this.#clock = isSchedulingClock(clock) ? clock : systemClock;
  }

  /** The job's name. */
  get name(): string {
    return this.#name;
  }

  /** The configured interval; `0` when the timer is disabled. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** True between {@link BackgroundJob.start} (with a non-zero interval) and {@link BackgroundJob.stop}. */
  get started(): boolean {
    return this.#started;
  }

  /** True while a run (timer-driven or {@link BackgroundJob.runOnce}) is in progress or waiting for one. */
  get running(): boolean {
    return this.#running > 0;
  }

  /** Schedules the first run one interval from now, and each next run one interval after the previous ended. Idempotent; does nothing when `intervalMs` is 0. */
  start(): void {
    if (this.#started || this.#intervalMs === 0) return;
    this.#started = true;
    this.#schedule();
  }

  /** Runs the work now (after a run in progress ends) and returns its result or rejects with its error. */
  runOnce(): Promise<T> {
    return this.#enqueue("call");
  }

  #enqueue(trigger: JobTrigger): Promise<T> {
    this.#running += 1;
    const result = this.#tail.then(() => this.#run(trigger));
    this.#tail = result.then(
      () => {
        this.#running -= 1;
      },
      () => {
        this.#running -= 1;
      },
    );
    return result;
  }

  /** Cancels the timer and waits for a run in progress. The job can be started again. */
  async stop(): Promise<void> {
    this.#started = false;
    this.#cancel?.();
    this.#cancel = undefined;
    await this.#tail;
  }

  #schedule(): void {
    this.#cancel = this.#clock.schedule(this.#intervalMs, () => {
      this.#cancel = undefined;
      if (!this.#started) return;
      this.#enqueue("timer")
        .catch(this.#onError)
        .finally(() => {
          if (this.#started && this.#cancel === undefined) this.#schedule();
        });
    });
  }
}

/**
 * Validates an interval option: an integer in 0..2^31-1 (0 disables). Throws
 * {@link InvalidArgumentError} naming `option`; `undefined` gives `fallback`.
 */
export function checkIntervalMs(value: unknown, option: string, op: string, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_INTERVAL_MS) {
    throw new InvalidArgumentError(
      `${option} must be an integer from 0 (disabled) to ${MAX_INTERVAL_MS} milliseconds, got ${String(value)}`,
      { op },
    );
  }
  return value;
}

/** The default `onError` of background jobs: a process warning, so failures are visible without crashing. */
export function warnJobError(name: string): (err: unknown) => void {
  return (err) =>
    process.emitWarning(`storeroom ${name} failed: ${err instanceof Error ? err.message : String(err)}`, {
      type: "StoreroomWarning",
    });
}
