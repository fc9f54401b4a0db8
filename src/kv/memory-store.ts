import { ClosedError, InvalidArgumentError } from "../errors.js";
import type { MigrationSet } from "../sql/index.js";
import { MemoryTx } from "./memory-tx.js";
import { RwGate } from "./rw-gate.js";
import type { SortedNamespace } from "./sorted-namespace.js";
import type { Store, StoreMigrationResult, Tx } from "./store.js";
import { runStoreMigrations } from "./store-migrations.js";

/**
 * The `memory` driver: sorted in-memory maps behind a readers-writer gate. Views share the
 * gate and read committed data in place; an update holds it alone for its whole callback and
 * applies its staged writes at the end, so transactions are serializable. Values are copied
 * in and out. Data lives as long as the store.
 */
export class MemoryStore implements Store {
  readonly #data = new Map<string, SortedNamespace>();
  readonly #gate = new RwGate();
  #closed = false;

  migrate(set?: MigrationSet<Tx>): Promise<StoreMigrationResult> {
    if (this.#closed) return Promise.reject(closed("kv.migrate"));
    return runStoreMigrations(this, set);
  }

  view<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closed("kv.view"));
    if (typeof fn !== "function") return Promise.reject(new InvalidArgumentError("view needs a callback"));
    // The uncontended path stays free of extra promises: a view per point read must stay cheap.
    if (this.#gate.tryRead()) return this.#runView(fn);
    return this.#gate.read().then(() => this.#runView(fn));
  }

  async update<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) throw closed("kv.update");
    if (typeof fn !== "function") throw new InvalidArgumentError("update needs a callback");
    await this.#gate.write();
    const tx = new MemoryTx(this.#data, true);
    try {
      const result = await fn(tx);
      tx.commit();
      return result;
    } finally {
      tx.finish();
      this.#gate.releaseWrite();
    }
  }

  ping(): Promise<void> {
    return this.#closed ? Promise.reject(closed("kv.ping")) : Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#gate.write();
    this.#data.clear();
    this.#gate.releaseWrite();
  }

  #runView<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const tx = new MemoryTx(this.#data, false);
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(fn(tx));
    } catch (err) {
      pending = Promise.reject(err);
    }
    return pending.then(
      (value) => {
        tx.finish();
        this.#gate.releaseRead();
        return value;
      },
      (err: unknown) => {
        tx.finish();
        this.#gate.releaseRead();
        throw err;
      },
    );
  }
}

function closed(op: string): ClosedError {
  return new ClosedError("store is closed", { op });
}

/** Opens an empty `memory` store. */
export async function openMemoryStore(): Promise<MemoryStore> {
  return new MemoryStore();
}
