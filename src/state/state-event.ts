/** What changed: a key written, a key removed (also by TTL expiry and purges), or a whole group removed. */
export type StateEventType = "set" | "delete" | "delete_group";

/**
 * One committed change. Watchers and callbacks that exist when it commits receive it; the
 * store's change log keeps it for `changeRetentionMs` so a reader can catch up with
 * {@link StateStore.changesSince}.
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
  /**
   * The store version this change got: strictly increasing in commit order, the `version` of
   * the entry it wrote, and the position to resume from with {@link StateStore.changesSince}
   * (and the SSE event id over HTTP).
   */
  readonly version: number;
}

/** An `onChange` callback. It runs synchronously after commit; what it throws is reported, never rethrown to the writer. */
export type ChangeCallback = (event: StateEvent) => void;
