import { Mutex } from "../internal/mutex.js";

/**
 * Serializes everything that hands one recipient its messages: the register handshake
 * (requeue + flush) and every drain triggered by a new message. Kicks coalesce: while a drain
 * is queued, more kicks add nothing, because that drain will read every row committed
 * before it starts. Serializing per recipient keeps the flush and the live path from sending
 * the same row twice and from marking a row delivered after a reconnect requeued it.
 */
export class DeliveryLane {
  readonly #mutex = new Mutex();
  #queued = false;

  /** Runs `fn` exclusively in this lane. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.#mutex.run(fn);
  }

  /** Queues one run of `drain` unless one is already queued; resolves when it finished. */
  kick(drain: () => Promise<void>): Promise<void> {
    if (this.#queued) return Promise.resolve();
    this.#queued = true;
    return this.#mutex.run(() => {
      this.#queued = false;
      return drain();
    });
  }

  /** True when nothing runs or waits. */
  get idle(): boolean {
    return !this.#mutex.locked;
  }
}
