/**
 * A FIFO async mutex with direct hand-off: `release()` passes the lock to the next waiter
 * without unlocking in between, so `locked === false` means nobody holds or waits for it and
 * callers may take a synchronous fast path.
 */
export class Mutex {
  #locked = false;
  readonly #waiters: (() => void)[] = [];

  /** True while someone holds the lock (waiters imply a holder). */
  get locked(): boolean {
    return this.#locked;
  }

  /** Takes the lock if it is free; returns whether it did. */
  tryAcquire(): boolean {
    if (this.#locked) return false;
    this.#locked = true;
    return true;
  }

  /** Resolves once the caller holds the lock. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Hands the lock to the next waiter, or frees it. */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }

  /** Runs `fn` while holding the lock. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
