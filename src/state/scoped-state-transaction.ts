import type { EntryOperations } from "./entry-operations.js";
import { enforceQuota, ScopedOperations, type ScopeQuota } from "./scoped-operations.js";
import type { StateTransaction } from "./state-transaction.js";

/**
 * The `tx` of {@link ScopedStateStore.transaction}: the scoped API inside one transaction. Quota
 * checks see the transaction's pending writes.
 */
export class ScopedStateTransaction extends ScopedOperations {
  readonly #tx: StateTransaction;

  /** @internal Built by {@link ScopedStateStore.transaction}. */
  constructor(tx: StateTransaction, namespace: string, quota: Required<ScopeQuota>) {
    super(namespace, quota);
    this.#tx = tx;
  }

  protected target(): EntryOperations {
    return this.#tx;
  }

  protected inTransaction<T>(fn: (tx: StateTransaction) => Promise<T>): Promise<T> {
    return fn(this.#tx);
  }

  protected async checkedWrite<T>(group: string, key: string, write: (ops: EntryOperations) => Promise<T>): Promise<T> {
    if (!this.unlimited) await enforceQuota(this.#tx, this.namespace, this.quota, group, key);
    return write(this.#tx);
  }
}
