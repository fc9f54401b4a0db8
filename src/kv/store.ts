import type { MigrationSet } from "../sql/index.js";

/** One entry returned by {@link Tx.scan}. */
export interface KvEntry {
  /** The entry's key. */
  readonly key: string;
  /** A copy of the stored value, owned by the caller. */
  readonly value: Uint8Array;
}

/**
 * The range form of {@link Tx.scan}, for cursor pagination. Keys compare by their UTF-8
 * bytes on every driver.
 *
 * @example
 * ```ts
 * // Next page after `last`: the smallest key greater than `last` is `last + "\u0000"`.
 * const page = await tx.scan("tasks", { prefix: "task:", start: `${last}\u0000`, limit: 100 });
 * // Previous page, newest first: keys strictly below `first`.
 * const back = await tx.scan("tasks", { prefix: "task:", end: first, limit: 100, reverse: true });
 * ```
 */
export interface ScanRange {
  /** Only keys starting with this literal string. Default `""` (every key). */
  readonly prefix?: string;
  /** Inclusive lower bound. Default: none. */
  readonly start?: string;
  /** Exclusive upper bound. Default: none. */
  readonly end?: string;
  /** At most this many entries (a non-negative integer). Default: no limit. */
  readonly limit?: number;
  /** Descending key order; `limit` then keeps the largest keys. Default `false`. */
  readonly reverse?: boolean;
}

/**
 * A namespaced key-value transaction handle, handed to {@link Store.view} and
 * {@link Store.update} callbacks. Use it only inside its callback: afterwards every method
 * rejects with {@link TransactionError}. Namespaces and keys are any well-formed Unicode
 * strings (NUL included); a string with a lone surrogate, or a non-string, rejects with
 * {@link InvalidKeyError}.
 */
export interface Tx {
  /**
   * Resolves to a copy of the value under `(ns, key)`, owned by the caller; rejects with
   * {@link NotFoundError} when there is none. Inside `update` it sees the transaction's own writes.
   *
   * @example
   * ```ts
   * const raw = await store.view((tx) => tx.get("settings", "theme"));
   * ```
   */
  get(ns: string, key: string): Promise<Uint8Array>;

  /**
   * Stores a copy of `value` under `(ns, key)`, replacing any previous value; the caller may
   * reuse `value` at once. An empty value is stored as present-and-empty, distinct from absent.
   * Rejects with {@link ReadOnlyError} inside `view` (nothing is written) and with
   * {@link InvalidArgumentError} when `value` is not a `Uint8Array`.
   */
  put(ns: string, key: string, value: Uint8Array): Promise<void>;

  /** Removes `(ns, key)`; an absent key is a no-op. Rejects with {@link ReadOnlyError} inside `view`. */
  delete(ns: string, key: string): Promise<void>;

  /**
   * Entries of `ns` in ascending UTF-8 byte order of their keys. A string argument is a
   * literal prefix (`%`, `_` and `\` match themselves; `""` scans the whole namespace); a
   * {@link ScanRange} adds bounds, a limit and descending order.
   *
   * @example
   * ```ts
   * const tasks = await store.view((tx) => tx.scan("tasks", "task:"));
   * ```
   */
  scan(ns: string, prefixOrRange?: string | ScanRange): Promise<KvEntry[]>;
}

/**
 * The transactional, namespaced key-value seam. Open one with {@link openStore}. A single
 * `Store` is safe for any number of concurrent async callers. Do not call the store from
 * inside one of its own callbacks; use the `tx` you were given.
 */
export interface Store {
  /**
   * Applies the set's migrations that are not yet recorded, each in its own `update`
   * together with its record in the `__store_migrations__` namespace. Re-running is a no-op.
   * Rejects with {@link MigrationOutOfOrderError} when an applied migration was reordered or
   * removed; applied ids past the end of the set (older code, or an empty set) are reported
   * in `ahead` and are not an error. An absent set is an empty set named `"default"`. A failing migration's error is rethrown after the
   * migrations before it stayed applied.
   *
   * @example
   * ```ts
   * const set = new MigrationSet<Tx>("tasks").add({ id: "tasks/001-seed", up: (tx) => tx.put("tasks", "next", new Uint8Array([1])) });
   * await store.migrate(set);
   * ```
   */
  migrate(set?: MigrationSet<Tx>): Promise<StoreMigrationResult>;

  /**
   * Runs `fn` in a read-only transaction over a consistent snapshot and resolves to its
   * result; `fn`'s error is rethrown unchanged. Writes reject with {@link ReadOnlyError}.
   *
   * @example
   * ```ts
   * const [a, b] = await store.view((tx) => Promise.all([tx.get("acct", "a"), tx.get("acct", "b")]));
   * ```
   */
  view<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;

  /**
   * Runs `fn` in a serializable read-write transaction and commits when it resolves. If `fn`
   * rejects, nothing is written and the same error is rethrown. A driver may run `fn` again
   * after a serialization conflict (the postgres driver does), so keep side effects out of it.
   *
   * @example
   * ```ts
   * await store.update(async (tx) => {
   *   const n = Number(new TextDecoder().decode(await tx.get("counters", "hits")));
   *   await tx.put("counters", "hits", new TextEncoder().encode(String(n + 1)));
   * });
   * ```
   */
  update<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;

  /** Resolves when the store is reachable and usable; rejects with {@link ClosedError} after `close()`. */
  ping(): Promise<void>;

  /**
   * Waits for admitted transactions and releases every resource. Idempotent; afterwards
   * every other method rejects with {@link ClosedError}.
   */
  close(): Promise<void>;
}

/** What {@link Store.migrate} did. */
export interface StoreMigrationResult {
  /** Ids applied by this call, in order. */
  readonly applied: readonly string[];
  /** Recorded ids past the end of the set: the store is ahead of this code. */
  readonly ahead: readonly string[];
}

/**
 * Builds a {@link Store} from a driver-specific data-source name, for {@link registerDriver}.
 * `memory` ignores the dsn; `sqlite` takes a path or `":memory:"`; `postgres` a connection string.
 *
 * @example
 * ```ts
 * const factory: StoreFactory = async (dsn) => SqlStore.open({ database: await openSqlite(dsn), closeDatabase: true });
 * ```
 */
export type StoreFactory = (dsn: string) => Promise<Store>;
