import type { Clock } from "../clock.js";
import { TransactionError } from "../errors.js";
import { type Executor, takeTransactionLock } from "../sql/index.js";
import type { ChangeLog } from "./change-log.js";
import { EntryOperations } from "./entry-operations.js";
import type { StateEvent } from "./state-event.js";

/**
 * The `tx` of {@link StateStore.transaction}: the store's read/write API inside one database
 * transaction. Reads see the transaction's own pending writes; events are buffered and
 * delivered only after commit (never after a rollback). Unusable once the callback settled.
 */
export class StateTransaction extends EntryOperations {
  readonly #tx: Executor;
  readonly #events: StateEvent[];
  #active = true;

  /** @internal Built by {@link StateStore.transaction}. */
  constructor(tx: Executor, clock: Clock, log: ChangeLog, events: StateEvent[]) {
    super(clock, log);
    this.#tx = tx;
    this.#events = events;
  }

  /**
   * @internal Serialises quota checks of one namespace across concurrent transactions. SQLite
   * needs nothing (BEGIN IMMEDIATE already admits one writer); PostgreSQL takes a
   * transaction-scoped advisory lock.
   */
  async lockNamespace(namespace: string): Promise<void> {
    await takeTransactionLock(this.executor("state.scoped"), { name: `storeroom.state:${namespace}` });
  }

  /** @internal Ends the handle when the callback settled. */
  finish(): void {
    this.#active = false;
  }

  protected executor(op: string): Executor {
    if (!this.#active) {
      throw new TransactionError("state transaction already finished: use tx only inside its callback", { op });
    }
    return this.#tx;
  }

  protected atomically<T>(op: string, fn: (ex: Executor) => Promise<T>, savepoint = false): Promise<T> {
    const ex = this.executor(op);
    return savepoint ? ex.transaction(fn) : fn(ex);
  }

  protected publish(events: readonly StateEvent[]): undefined {
    this.#events.push(...events);
    return undefined;
  }
}
