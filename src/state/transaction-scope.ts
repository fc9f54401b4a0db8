import { AsyncLocalStorage } from "node:async_hooks";
import { TransactionError } from "../errors.js";

interface Frame {
  readonly scope: TransactionScope;
  active: boolean;
  readonly parent: Frame | undefined;
}

const frames = new AsyncLocalStorage<Frame>();
let openFrames = 0;

/**
 * Knows whether the running code is inside one of its owner's transaction callbacks, so a call
 * to the owner from there (which would wait for its own transaction on SQLite, or run outside it
 * on PostgreSQL) throws {@link TransactionError} instead.
 *
 * The async context is only looked at while the owner has a transaction open, and the context
 * storage is switched off whenever no transaction is open in the process: on Node 20 an enabled
 * AsyncLocalStorage costs a hook on every promise.
 */
export class TransactionScope {
  readonly #owner: string;
  #open = 0;

  constructor(owner: string) {
    this.#owner = owner;
  }

  /** Runs `fn` as a transaction callback of this scope; calls to {@link assertOutside} from inside it throw. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const frame: Frame = { scope: this, active: true, parent: frames.getStore() };
    this.#open++;
    openFrames++;
    try {
      return await frames.run(frame, fn);
    } finally {
      frame.active = false;
      this.#open--;
      if (--openFrames === 0) frames.disable();
    }
  }

  /** Throws {@link TransactionError} when called from inside one of this scope's running transactions. */
  assertOutside(op: string): void {
    if (this.#open === 0) return;
    for (let f = frames.getStore(); f !== undefined; f = f.parent) {
      if (f.scope === this && f.active) {
        throw new TransactionError(
          `the ${this.#owner} was called from inside its own transaction, which would wait for itself or run outside it; use the tx passed to the callback`,
          { op },
        );
      }
    }
  }
}
