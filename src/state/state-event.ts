/** What changed: a key written, a key removed (also by TTL expiry and purges), or a whole group removed. */
export type StateEventType = "set" | "delete" | "delete_group";

/**
 * One committed change. Events are not persisted; they reach the watchers and callbacks that
 * exist when the change commits.
 */
export interface StateEvent {
  readonly type: StateEventType;
  /** The group as stored (with the `ns:` prefix on the raw store, without it on a scoped store). */
  readonly group: string;
  /** The key; `""` for `delete_group`. */
  readonly key: string;
  /** The new value, only for `set`. */
  readonly value?: string;
  /** When the change was made, in ms from the store's clock. */
  readonly timestamp: number;
}

/** An `onChange` callback. It runs synchronously after commit; what it throws is reported, never rethrown to the writer. */
export type ChangeCallback = (event: StateEvent) => void;
