import type { ChangeCallback, StateEvent } from "./state-event.js";
import { type EventMapper, StateWatcher } from "./state-watcher.js";

/**
 * Watchers and callbacks of one store. Registrations are copy-on-write, so a dispatch iterates a
 * snapshot and callbacks may (un)subscribe re-entrantly.
 */
export class EventHub {
  readonly #watchers = new Map<string, readonly StateWatcher[]>();
  #callbacks: readonly ChangeCallback[] = [];
  #count = 0;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  /** Whether anyone listens; writers build no events otherwise. */
  get listening(): boolean {
    return this.#count > 0;
  }

  watch(group: string, bufferSize: number, map?: EventMapper): StateWatcher {
    const watcher = new StateWatcher(group, bufferSize, (w) => this.#remove(w), map);
    this.#watchers.set(group, [...(this.#watchers.get(group) ?? []), watcher]);
    this.#count++;
    return watcher;
  }

  onChange(callback: ChangeCallback): () => void {
    this.#callbacks = [...this.#callbacks, callback];
    this.#count++;
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const i = this.#callbacks.indexOf(callback);
      if (i >= 0) {
        this.#callbacks = [...this.#callbacks.slice(0, i), ...this.#callbacks.slice(i + 1)];
        this.#count--;
      }
    };
  }

  dispatch(event: StateEvent): void {
    const exact = this.#watchers.get(event.group);
    if (exact !== undefined) for (const w of exact) w.push(event);
    if (event.group !== "*") {
      const all = this.#watchers.get("*");
      if (all !== undefined) for (const w of all) w.push(event);
    }
    for (const cb of this.#callbacks) {
      try {
        cb(event);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  /** Ends every watcher and drops every callback. */
  async closeAll(): Promise<void> {
    const watchers = [...this.#watchers.values()].flat();
    this.#callbacks = [];
    for (const w of watchers) await w.close();
    this.#watchers.clear();
    this.#count = 0;
  }

  #remove(watcher: StateWatcher): void {
    const list = this.#watchers.get(watcher.group);
    if (list === undefined || !list.includes(watcher)) return;
    const rest = list.filter((w) => w !== watcher);
    if (rest.length === 0) this.#watchers.delete(watcher.group);
    else this.#watchers.set(watcher.group, rest);
    this.#count--;
  }
}
