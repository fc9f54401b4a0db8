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

/** The wall clock (`Date.now()`). */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

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
