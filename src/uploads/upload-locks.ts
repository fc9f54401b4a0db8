/** A held lock: `signal` aborts when another caller asks for the same upload. */
export interface UploadLock {
  readonly signal: AbortSignal;
  release(): void;
}

/**
 * One holder per upload id in this process. A new caller does not queue behind a request
 * that may never end (a client whose connection died without the server noticing): it asks
 * the holder to stop (aborts its signal), waits until the holder has saved what it received
 * and released, then takes the lock.
 */
export class UploadLocks {
  readonly #held = new Map<string, { controller: AbortController; released: Promise<void> }>();

  /** Takes the lock of `id`, stopping the current holder first. */
  async acquire(id: string): Promise<UploadLock> {
    for (let current = this.#held.get(id); current !== undefined; current = this.#held.get(id)) {
      current.controller.abort();
      await current.released;
    }
    const controller = new AbortController();
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const entry = { controller, released };
    this.#held.set(id, entry);
    return {
      signal: controller.signal,
      release: () => {
        if (this.#held.get(id) === entry) this.#held.delete(id);
        release();
      },
    };
  }
}
