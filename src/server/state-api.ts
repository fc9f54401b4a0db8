/** A change as the state store's `watch` yields it. */
export interface StateChange {
  readonly type: string;
  readonly group: string;
  readonly key: string;
  readonly value?: string;
  readonly timestamp: number;
}

/** A live subscription from `watch`: iterate it; `return()` ends it; `dropped` counts overflow. */
export interface StateWatcher extends AsyncIterable<StateChange> {
  readonly dropped: number;
  return?(): Promise<unknown>;
}

/**
 * The subset of `StateStore` (storeroom/state) the HTTP routes use, declared structurally so
 * the routes can be exercised over any implementation of the same contract.
 */
export interface StateApi {
  /** The value, or `NotFoundError` when the key is missing or expired. */
  get(group: string, key: string): Promise<string>;
  set(group: string, key: string, value: string): Promise<void>;
  setWithTtl(group: string, key: string, value: string, ttlMs: number): Promise<void>;
  delete(group: string, key: string): Promise<void>;
  count(group: string): Promise<number>;
  countAll(prefix: string): Promise<number>;
  getPage(group: string, offset: number, limit: number): Promise<readonly { key: string; value: string }[]>;
  groups(prefix?: string): Promise<readonly string[]>;
  watch(group: string): StateWatcher;
  purgeExpired(): Promise<number>;
  close(): Promise<void>;
}
