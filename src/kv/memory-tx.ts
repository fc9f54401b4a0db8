import { NotFoundError, ReadOnlyError, TransactionError } from "../errors.js";
import { assertKey, assertValue, compareKeys, copyBytes, type ResolvedRange, resolveRange } from "./key-order.js";
import { SortedNamespace } from "./sorted-namespace.js";
import type { KvEntry, ScanRange, Tx } from "./store.js";

/** Staged writes of an update: `null` marks a delete. */
type Staged = Map<string, Map<string, Uint8Array | null>>;

/**
 * The memory driver's {@link Tx}. A view reads the committed maps directly (the store's gate
 * keeps writers out meanwhile); an update stages its writes and applies them in `commit()`.
 */
export class MemoryTx implements Tx {
  readonly #data: Map<string, SortedNamespace>;
  readonly #staged: Staged | undefined;
  #active = true;

  constructor(data: Map<string, SortedNamespace>, writable: boolean) {
    this.#data = data;
    this.#staged = writable ? new Map() : undefined;
  }

  get(ns: string, key: string): Promise<Uint8Array> {
    try {
      this.#assertUsable("kv.get", ns, key);
      const staged = this.#staged?.get(ns)?.get(key);
      const value = staged === undefined ? this.#data.get(ns)?.get(key) : staged;
      if (value === undefined || value === null) throw new NotFoundError("key not found", { op: "kv.get" });
      return Promise.resolve(copyBytes(value));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  put(ns: string, key: string, value: Uint8Array): Promise<void> {
    try {
      this.#assertUsable("kv.put", ns, key);
      assertValue(value, "kv.put");
      this.#stage("kv.put", ns).set(key, copyBytes(value));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(ns: string, key: string): Promise<void> {
    try {
      this.#assertUsable("kv.delete", ns, key);
      this.#stage("kv.delete", ns).set(key, null);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  scan(ns: string, prefixOrRange?: string | ScanRange): Promise<KvEntry[]> {
    try {
      this.#assertUsable("kv.scan", ns, "");
      const range = resolveRange(prefixOrRange, "kv.scan");
      const committed = this.#data.get(ns);
      const staged = this.#staged?.get(ns);
      if (staged === undefined || staged.size === 0) {
        if (committed === undefined) return Promise.resolve([]);
        return Promise.resolve(
          committed.keys(range).map((key) => ({ key, value: copyBytes(committed.get(key) as Uint8Array) })),
        );
      }
      return Promise.resolve(mergeStaged(committed, staged, range));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Applies the staged writes to the committed maps; synchronous, so it is atomic. */
  commit(): void {
    for (const [ns, writes] of this.#staged ?? []) {
      let target = this.#data.get(ns);
      for (const [key, value] of writes) {
        if (value !== null) {
          if (target === undefined) {
            target = new SortedNamespace();
            this.#data.set(ns, target);
          }
          target.set(key, value);
        } else {
          target?.delete(key);
        }
      }
      if (target?.size === 0) this.#data.delete(ns);
    }
  }

  finish(): void {
    this.#active = false;
  }

  #stage(op: string, ns: string): Map<string, Uint8Array | null> {
    if (this.#staged === undefined) throw new ReadOnlyError("cannot write inside view", { op });
    let writes = this.#staged.get(ns);
    if (writes === undefined) {
      writes = new Map();
      this.#staged.set(ns, writes);
    }
    return writes;
  }

  #assertUsable(op: string, ns: string, key: string): void {
    if (!this.#active) {
      throw new TransactionError("transaction already finished: use the tx only inside its callback", { op });
    }
    assertKey("namespace", ns, op);
    assertKey("key", key, op);
  }
}

function mergeStaged(
  committed: SortedNamespace | undefined,
  staged: Map<string, Uint8Array | null>,
  range: ResolvedRange,
): KvEntry[] {
  const merged = new Map<string, Uint8Array>();
  for (const key of committed?.keys({ ...range, limit: undefined, reverse: false }) ?? []) {
    merged.set(key, committed?.get(key) as Uint8Array);
  }
  for (const [key, value] of staged) {
    if (!inRange(key, range)) continue;
    if (value === null) merged.delete(key);
    else merged.set(key, value);
  }
  const keys = [...merged.keys()].sort(compareKeys);
  if (range.reverse) keys.reverse();
  return keys
    .slice(0, range.limit ?? keys.length)
    .map((key) => ({ key, value: copyBytes(merged.get(key) as Uint8Array) }));
}

function inRange(key: string, range: ResolvedRange): boolean {
  return (
    key.startsWith(range.prefix) &&
    (range.lower === undefined || compareKeys(key, range.lower) >= 0) &&
    (range.upper === undefined || compareKeys(key, range.upper) < 0)
  );
}
