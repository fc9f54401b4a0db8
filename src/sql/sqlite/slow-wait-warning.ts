import type { Mutex } from "../../internal/mutex.js";

/** How long a statement may wait for a transaction before the warning is emitted. */
export const SLOW_WAIT_MS = 5000;

/**
 * Acquires a database's locks and, when a caller waits unusually long, emits one process
 * warning per database. Calling a database (or an outer `tx`) from inside its own transaction
 * waits forever; without `detectSelfDeadlock` this warning is how that mistake shows up.
 * The timer exists only on the slow path, when the lock is already held.
 */
export class SlowWaitWarning {
  readonly #label: string;
  #emitted = false;

  constructor(label: string) {
    this.#label = label;
  }

  acquire(mutex: Mutex): Promise<void> {
    if (mutex.tryAcquire()) return Promise.resolve();
    return this.wait(mutex);
  }

  /** The slow path of {@link SlowWaitWarning.acquire}: the lock is held by someone else. */
  wait(mutex: Mutex): Promise<void> {
    if (this.#emitted) return mutex.acquire();
    const timer = setTimeout(() => {
      if (this.#emitted) return;
      this.#emitted = true;
      process.emitWarning(
        `a statement on ${this.#label} has waited ${SLOW_WAIT_MS} ms for a transaction; if it was issued from inside that transaction, use the tx passed to the callback (openSqlite's detectSelfDeadlock option turns this into a TransactionError)`,
        { code: "STOREROOM_SLOW_WAIT" },
      );
    }, SLOW_WAIT_MS);
    timer.unref();
    return mutex.acquire().finally(() => clearTimeout(timer));
  }
}
