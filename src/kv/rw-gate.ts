interface Waiter {
  readonly write: boolean;
  readonly resolve: () => void;
}

/**
 * A FIFO readers-writer lock: any number of readers, or one writer. A waiting writer stops
 * new readers from overtaking it, so a stream of readers cannot starve it.
 */
export class RwGate {
  #readers = 0;
  #writer = false;
  readonly #queue: Waiter[] = [];

  /** Enters as a reader without waiting when possible (the hot path of an uncontended read). */
  tryRead(): boolean {
    if (this.#writer || this.#queue.length > 0) return false;
    this.#readers++;
    return true;
  }

  read(): Promise<void> {
    if (this.tryRead()) return Promise.resolve();
    return new Promise((resolve) => this.#queue.push({ write: false, resolve }));
  }

  write(): Promise<void> {
    if (!this.#writer && this.#readers === 0 && this.#queue.length === 0) {
      this.#writer = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#queue.push({ write: true, resolve }));
  }

  releaseRead(): void {
    this.#readers--;
    if (this.#readers === 0) this.#drain();
  }

  releaseWrite(): void {
    this.#writer = false;
    this.#drain();
  }

  #drain(): void {
    for (let head = this.#queue[0]; head !== undefined && !this.#writer; head = this.#queue[0]) {
      if (head.write) {
        if (this.#readers > 0) return;
        this.#writer = true;
      } else {
        this.#readers++;
      }
      this.#queue.shift();
      head.resolve();
    }
  }
}
