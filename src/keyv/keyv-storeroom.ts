import { EventEmitter } from "node:events";
import { InvalidArgumentError } from "../errors.js";
import type { BatchOperation, StateStore } from "../state/index.js";
import { WriteOrder } from "./write-order.js";

/** Options of {@link KeyvStoreroom}. */
export interface KeyvStoreroomOptions {
  /** The state store holding the entries. The caller opens and closes it. */
  state: StateStore;
  /**
   * Prepended to every Keyv namespace to name its state group, to keep Keyv's groups apart
   * from the application's own. Default `""`: namespace `"sessions"` is group `"sessions"`.
   */
  groupPrefix?: string;
  /** The namespace used while Keyv sets none (Keyv 6 without `namespace`). Default `"keyv"`. */
  defaultNamespace?: string;
}

/** Shared by every adapter over one state store: Keyv code often makes a new adapter per use. */
const writeOrders = new WeakMap<StateStore, WriteOrder>();

/** One entry of {@link KeyvStoreroom.setMany}: Keyv's serialized value and a relative TTL in ms. */
export interface KeyvStoreroomEntry {
  key: string;
  value: unknown;
  ttl?: number;
}

/**
 * A Keyv storage adapter over a {@link StateStore}: each Keyv namespace is one state group,
 * each key one entry holding Keyv's serialized value, and Keyv's TTL is the entry's own (expired
 * entries are invisible to every read and purged by the store). Works with Keyv 5 (keys arrive
 * prefixed `namespace:`, as Keyv 5 stores them everywhere) and Keyv 6 (which adapts it as a
 * store that handles namespaces itself, so keys arrive as given). Writes of one key through
 * the adapters of one state store apply in the order they reach them, also on PostgreSQL
 * (a `delete` nobody awaited is not overtaken by a later `set`); `clear` is ordered with every
 * write.
 *
 * @example
 * ```ts
 * import Keyv from "keyv";
 * import { KeyvStoreroom } from "storeroom/keyv";
 *
 * const state = await StateStore.open({ database: await openSqlite("./app.db") });
 * const sessions = new Keyv({ store: new KeyvStoreroom({ state }), namespace: "sessions" });
 * await sessions.set("abc", { user: "ada" }, 60_000);
 * ```
 */
export class KeyvStoreroom extends EventEmitter {
  /** Set by Keyv: the namespace of the Keyv instance using this store. */
  namespace: string | undefined;
  /**
   * What Keyv 5 reads from its stores: `dialect` names the database engine, which is how
   * Keyv 5 decides that the store can iterate.
   */
  readonly opts: { dialect: string; url: string };
  readonly #state: StateStore;
  readonly #groupPrefix: string;
  readonly #defaultNamespace: string;
  readonly #order: WriteOrder;

  constructor(options: KeyvStoreroomOptions) {
    super();
    if (options?.state === undefined || typeof options.state.getEntry !== "function") {
      throw new InvalidArgumentError("state must be a StateStore", { op: "keyv.open" });
    }
    const groupPrefix = options.groupPrefix ?? "";
    const defaultNamespace = options.defaultNamespace ?? "keyv";
    if (typeof groupPrefix !== "string")
      throw new InvalidArgumentError("groupPrefix must be a string", { op: "keyv.open" });
    if (typeof defaultNamespace !== "string" || defaultNamespace === "") {
      throw new InvalidArgumentError("defaultNamespace must be a non-empty string", { op: "keyv.open" });
    }
    this.#state = options.state;
    this.#groupPrefix = groupPrefix;
    this.#defaultNamespace = defaultNamespace;
    let order = writeOrders.get(options.state);
    if (order === undefined) {
      order = new WriteOrder();
      writeOrders.set(options.state, order);
    }
    this.#order = order;
    // Keyv 5 iterates only stores whose `opts.dialect` it knows: name the engine family,
    // told apart by capability (only PostgreSQL runs writers side by side).
    const dialect = options.state.config.database?.dialect.concurrentWriters === true ? "postgres" : "sqlite";
    this.opts = { dialect, url: `storeroom:${dialect}` };
  }

  /** Keyv's serialized value for `key`, or `undefined` when absent or expired. */
  async get(key: string): Promise<string | undefined> {
    return (await this.#state.getEntry(this.#group(), key))?.value;
  }

  /** {@link KeyvStoreroom.get} for each key, in order. */
  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    const group = this.#group();
    const entries = await Promise.all(keys.map((key) => this.#state.getEntry(group, key)));
    return entries.map((e) => e?.value);
  }

  /** Stores Keyv's serialized `value`, expiring after `ttl` ms when it is a positive number. Resolves `true`. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const group = this.#group();
    const serialized = text(value);
    await this.#order.run([slot(group, key)], () => this.#state.set(group, key, serialized, this.#ttlOption(ttl)));
    return true;
  }

  /** Stores every entry in one atomic batch. */
  async setMany(entries: readonly KeyvStoreroomEntry[]): Promise<boolean[]> {
    const group = this.#group();
    const operations: BatchOperation[] = entries.map((e) => ({
      type: "set",
      group,
      key: e.key,
      value: text(e.value),
      ...this.#ttlOption(e.ttl),
    }));
    await this.#order.run(
      entries.map((e) => slot(group, e.key)),
      () => this.#state.batch(operations),
    );
    return entries.map(() => true);
  }

  /** Removes `key`; resolves whether there was an entry. */
  async delete(key: string): Promise<boolean> {
    const group = this.#group();
    return this.#order.run([slot(group, key)], () => this.#state.delete(group, key));
  }

  /**
   * Removes every key in one atomic batch; resolves `true` when each of them had an entry, so
   * also for no keys (as Keyv answers over its own in-memory store), without writing.
   */
  async deleteMany(keys: readonly string[]): Promise<boolean> {
    if (keys.length === 0) return true;
    const group = this.#group();
    const { versions } = await this.#order.run(
      keys.map((key) => slot(group, key)),
      () => this.#state.batch(keys.map((key) => ({ type: "delete", group, key }))),
    );
    return versions.every((v) => v !== null);
  }

  /** Removes every entry of the current namespace, and nothing else. */
  async clear(): Promise<void> {
    const group = this.#group();
    await this.#order.barrier(() => this.#state.deleteGroup(group));
  }

  /** Whether `key` has a live entry. */
  async has(key: string): Promise<boolean> {
    return this.#state.exists(this.#group(), key);
  }

  /** {@link KeyvStoreroom.has} for each key, in order. */
  async hasMany(keys: readonly string[]): Promise<boolean[]> {
    const group = this.#group();
    return Promise.all(keys.map((key) => this.#state.exists(group, key)));
  }

  /** Every live `[key, serialized value]` of `namespace` (default: the current one), in key order. */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    for await (const { key, value } of this.#state.all(this.#group(namespace))) yield [key, value];
  }

  /**
   * Keyv's TTL as the entry's expiry. A TTL reaching past the latest expiry the store can
   * record (a safe integer of ms) keeps the entry until {@link LATEST_EXPIRY}: Keyv over its own
   * map stores such an entry, and refusing it would make `set` answer `false`.
   */
  #ttlOption(ttl: number | undefined): { ttlMs?: number } {
    if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) return {};
    return { ttlMs: Math.min(ttl, LATEST_EXPIRY - this.#state.config.clock.now()) };
  }

  #group(namespace = this.namespace): string {
    return `${this.#groupPrefix}${namespace === undefined || namespace === "" ? this.#defaultNamespace : namespace}`;
  }
}

function slot(group: string, key: string): string {
  return `${group}\0${key}`;
}

function text(value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidArgumentError(
      `KeyvStoreroom stores serialized strings, got ${typeof value}: keep Keyv's serializer on`,
      { op: "keyv.set" },
    );
  }
  return value;
}

/**
 * The latest expiry a TTL is clamped to: the largest safe integer less 2^32 ms (about 50
 * days), so a write that waits behind others still computes a safe expiry from its later time.
 */
const LATEST_EXPIRY = Number.MAX_SAFE_INTEGER - 2 ** 32;
