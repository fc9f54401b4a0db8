import type { EntryOperations } from "./entry-operations.js";
import { enforceQuota, ScopedOperations, type ScopeQuota } from "./scoped-operations.js";
import { ScopedStateTransaction } from "./scoped-state-transaction.js";
import type { ChangeCallback, StateEvent } from "./state-event.js";
import type { StateStore } from "./state-store.js";
import type { StateTransaction } from "./state-transaction.js";
import type { StateWatcher } from "./state-watcher.js";

/**
 * A namespaced view of a {@link StateStore} with optional quotas. Obtain it with
 * {@link StateStore.scoped}. Quota checks and the write run in one transaction, so concurrent
 * writers can never exceed a limit.
 *
 * @example
 * ```ts
 * const tenant = state.scoped("tenant-a", { maxKeys: 100, maxGroups: 5 });
 * await tenant.set("colour", "blue");            // stored as group "tenant-a:default"
 * await tenant.setIn("config", "lang", "en");    // "tenant-a:config"
 * console.log(await tenant.groups());            // ["config", "default"]
 * ```
 */
export class ScopedStateStore extends ScopedOperations {
  readonly #store: StateStore;

  /** @internal Use {@link StateStore.scoped}. */
  constructor(store: StateStore, namespace: string, quota: Required<ScopeQuota>) {
    super(namespace, quota);
    this.#store = store;
  }

  protected target(): EntryOperations {
    return this.#store;
  }

  protected inTransaction<T>(fn: (tx: StateTransaction) => Promise<T>): Promise<T> {
    return this.#store.transaction(fn);
  }

  protected checkedWrite<T>(group: string, key: string, write: (ops: EntryOperations) => Promise<T>): Promise<T> {
    if (this.unlimited) return write(this.#store);
    return this.#store.transaction(async (tx) => {
      await enforceQuota(tx, this.namespace, this.quota, group, key);
      return write(tx);
    });
  }

  /** Runs `fn` in one transaction with the scoped API; events are delivered after commit. */
  transaction<T>(fn: (tx: ScopedStateTransaction) => Promise<T>): Promise<T> {
    return this.#store.transaction((tx) => fn(new ScopedStateTransaction(tx, this.namespace, this.quota)));
  }

  /** Watches `group` of this namespace, or `"*"` for all of it; events carry groups without the prefix. */
  watch(group: string, options: { bufferSize?: number } = {}): StateWatcher {
    const pattern = group === "*" ? "*" : this.qualify(group);
    return this.#store.watchMapped(pattern, options.bufferSize, (e) => this.#strip(e));
  }

  /** Calls `callback` after each committed change in this namespace (group without prefix). Returns the unsubscribe function. */
  onChange(callback: ChangeCallback): () => void {
    return this.#store.onChange((e) => {
      const local = this.#strip(e);
      if (local !== undefined) callback(local);
    });
  }

  #strip(event: StateEvent): StateEvent | undefined {
    const prefix = `${this.namespace}:`;
    if (!event.group.startsWith(prefix)) return undefined;
    return { ...event, group: event.group.slice(prefix.length) };
  }
}
