const settle = (): void => undefined;

/**
 * Starts writes in the order they were called, per key: a write starts once every earlier
 * write of one of its keys settled, and a barrier (a write of every key) once every earlier
 * write settled, with every later write waiting for it. Writes of different keys run side by
 * side. Why: on an engine with a connection pool two writes of one key otherwise race, and a
 * delete called first can land after a set called later.
 */
export class WriteOrder {
  readonly #tails = new Map<string, Promise<void>>();
  #barrier: Promise<void> | undefined;

  /** Runs `write` (which writes `keys`) after the earlier writes of those keys and the last barrier. */
  run<T>(keys: readonly string[], write: () => Promise<T>): Promise<T> {
    const before: Promise<void>[] = this.#barrier === undefined ? [] : [this.#barrier];
    for (const key of keys) {
      const tail = this.#tails.get(key);
      if (tail !== undefined) before.push(tail);
    }
    const result = before.length === 0 ? write() : Promise.all(before).then(write);
    const done = result.then(settle, settle);
    for (const key of keys) this.#tails.set(key, done);
    void done.then(() => {
      for (const key of keys) if (this.#tails.get(key) === done) this.#tails.delete(key);
    });
    return result;
  }

  /** Runs `write` after every earlier write; every later write waits for it. */
  barrier<T>(write: () => Promise<T>): Promise<T> {
    const before = [...this.#tails.values()];
    if (this.#barrier !== undefined) before.push(this.#barrier);
    const result = before.length === 0 ? write() : Promise.all(before).then(write);
    const done = result.then(settle, settle);
    this.#barrier = done;
    void done.then(() => {
      if (this.#barrier === done) this.#barrier = undefined;
    });
    return result;
  }
}
