import type { StateEvent } from "./state-event.js";

/** Maps an event to what this watcher yields, or `undefined` to skip it (scoped watchers filter and strip). */
export type EventMapper = (event: StateEvent) => StateEvent | undefined;

/**
 * An async iterable of {@link StateEvent}s with a bounded buffer. When the buffer is full, new
 * events are dropped (writers never wait for watchers) and counted in {@link StateWatcher.dropped}.
 * `close()` (or `return()`, e.g. breaking out of `for await`) ends it; buffered events are
 * still delivered first.
 *
 * @example
 * ```ts
 * const watcher = state.watch("config");
 * for await (const event of watcher) {
 *   console.log(event.type, event.key, event.value);
 *   if (event.key === "stop") break; // unwatches
 * }
 * ```
 */
export class StateWatcher implements AsyncIterableIterator<StateEvent> {
  /** The group watched, or `"*"`. */
  readonly group: string;
  /** Buffer capacity. */
  readonly bufferSize: number;
  readonly #buffer: StateEvent[] = [];
  readonly #map: EventMapper | undefined;
  readonly #onClose: (w: StateWatcher) => void;
  readonly #waiting: ((r: IteratorResult<StateEvent>) => void)[] = [];
  #dropped = 0;
  #closed = false;

  constructor(group: string, bufferSize: number, onClose: (w: StateWatcher) => void, map?: EventMapper) {
    this.group = group;
    this.bufferSize = bufferSize;
    this.#onClose = onClose;
    this.#map = map;
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True once closed (it may still hold buffered events). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Offers an event; never blocks. Internal to the store. */
  push(event: StateEvent): void {
    if (this.#closed) return;
    const mapped = this.#map === undefined ? event : this.#map(event);
    if (mapped === undefined) return;
    const waiting = this.#waiting.shift();
    if (waiting !== undefined) {
      waiting({ value: mapped, done: false });
    } else if (this.#buffer.length < this.bufferSize) {
      this.#buffer.push(mapped);
    } else {
      this.#dropped++;
    }
  }

  next(): Promise<IteratorResult<StateEvent>> {
    const event = this.#buffer.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
    });
  }

  /** Stops watching and drops the buffer (what `break` in `for await` calls). */
  async return(): Promise<IteratorResult<StateEvent>> {
    this.#buffer.length = 0;
    await this.close();
    return { value: undefined, done: true };
  }

  /** Stops watching; buffered events are still yielded, then iteration ends. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    for (const waiting of this.#waiting.splice(0)) waiting({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
