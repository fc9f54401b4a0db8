/**
 * The source of time for TTLs, leases, reapers and backoff. Stores take a `clock` option so
 * tests drive time with a {@link ManualClock} instead of sleeping.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
 * const state = await StateStore.open({ database, clock });
 * await state.setWithTtl("g", "k", "v", 1_000);
 * clock.advance(1_001); // "k" is now expired for every read
 * ```
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. Must never go backwards for a {@link ManualClock} user who does not ask it to. */
  now(): number;
}

/**
 * A {@link Clock} that can also run a callback later. A {@link BackgroundJob} schedules its
 * runs through its clock when the clock is one of these, so a test that passes a
 * {@link ManualScheduler} drives the job by advancing time.
 */
export interface SchedulingClock extends Clock {
  /**
   * Runs `fn` once, `delayMs` from now, without keeping the process alive for it. Returns a
   * function that cancels the call (a no-op once it ran).
   */
  schedule(delayMs: number, fn: () => void): () => void;
}

/** True when `clock` can schedule callbacks. */
export function isSchedulingClock(clock: Clock): clock is SchedulingClock {
  return typeof (clock as Partial<SchedulingClock>).schedule === "function";
}

/** The wall clock (`Date.now()`), scheduling on unref'd Node.js timers. */
export const systemClock: SchedulingClock = Object.freeze({
  now: () => Date.now(),
  schedule(delayMs: number, fn: () => void): () => void {
    const timer = setTimeout(fn, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
});

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves the clock forward by `ms` (which may be 0) and returns the new time. */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.#now += ms;
    return this.#now;
  }

  /** Sets the clock to an absolute time in ms. */
  set(ms: number): void {
    this.#now = ms;
  }
}

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A {@link ManualClock} that also schedules: callbacks run, in due order, while
 * {@link ManualScheduler.advance} moves time past them (time is set to each callback's due time
 * while it runs). A plain {@link ManualClock} does not schedule, so jobs given one keep real
 * timers.
 *
 * @example
 * ```ts
 * const clock = new ManualScheduler();
 * const job = new BackgroundJob({ name: "purge", intervalMs: 1_000, clock, run: () => purge() });
 * job.start();
 * clock.advance(1_000); // the first run starts now
 * ```
 */
export class ManualScheduler extends ManualClock implements SchedulingClock {
  #timers: ManualTimer[] = [];
  #seq = 0;

  schedule(delayMs: number, fn: () => void): () => void {
    const timer: ManualTimer = { due: this.now() + Math.max(0, delayMs), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** Callbacks scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.length;
  }

  override advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    const target = this.now() + ms;
    for (;;) {
      const next = this.#nextDue(target);
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      super.set(Math.max(this.now(), next.due));
      next.fn();
    }
    super.set(target);
    return target;
  }

  #nextDue(limit: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers) {
      if (t.due > limit) continue;
      if (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
