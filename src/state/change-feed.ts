import { type Executor, likePrefix } from "../sql/index.js";
import { currentVersion, readChanges } from "./change-log.js";
import type { EventHub } from "./event-hub.js";
import type { StateEvent } from "./state-event.js";

const PAGE = 500;

/** What a {@link ChangeFeed} needs from its store. */
export interface ChangeFeedSource {
  /** The store's database, for reading the change log; throws once the store is closed. */
  readonly executor: () => Executor;
  /** Whether other processes' changes can be read back (`false` without a change log). */
  readonly logged: boolean;
  /** Where changes are delivered. */
  readonly hub: EventHub;
}

/**
 * Delivers committed changes to a store's watchers and callbacks once each and in version
 * order, whichever process made them (another connection to the same SQLite file, another node
 * on PostgreSQL). This process's changes are delivered right after their commit; changes of other
 * processes are read from the change log, either by a local write that finds versions it has not
 * delivered before its own (they committed before it, since versions follow commit order) or by
 * {@link ChangeFeed.follow}, which the store polls. Without a change log only this process's
 * changes are delivered.
 */
export class ChangeFeed {
  readonly #source: ChangeFeedSource;
  /** Every version up to this one was delivered, or passed while nobody listened; -1 until known. */
  #delivered: number;
  #reading: Promise<boolean> | undefined;

  /**
   * A feed that starts after `start`, the store's current version. Without it (the store's
   * tables may not exist yet) the feed starts at its first delivery or {@link follow}.
   */
  constructor(source: ChangeFeedSource, start?: number) {
    this.#source = source;
    this.#delivered = start ?? -1;
  }

  /**
   * Delivers this process's just-committed `events` (in version order). When versions before
   * them are still undelivered, they are read from the log and delivered first; otherwise the
   * delivery is synchronous and nothing is returned.
   */
  deliver(events: readonly StateEvent[]): Promise<void> | undefined {
    const first = events[0];
    if (first === undefined) return undefined;
    const last = events[events.length - 1] as StateEvent;
    if (!this.#source.hub.listening) {
      this.#delivered = Math.max(this.#delivered, last.version);
      return undefined;
    }
    // A feed that did not know where it starts starts here: nothing before these is owed.
    if (this.#delivered < 0 || !this.#source.logged || first.version <= this.#delivered + 1) {
      this.#dispatch(events);
      return undefined;
    }
    return this.#catchUp(first.version - 1).then(() => this.#dispatch(events));
  }

  /**
   * Delivers what other processes committed since the last delivery, when anyone listens
   * (otherwise only notes the store's version). Returns how many events were delivered.
   */
  async follow(): Promise<number> {
    if (!this.#source.logged) return 0;
    const version = await currentVersion(this.#source.executor());
    if (this.#delivered < 0 || !this.#source.hub.listening) {
      this.#delivered = Math.max(this.#delivered, version);
      return 0;
    }
    const before = this.#delivered;
    await this.#catchUp(version);
    return this.#delivered - before;
  }

  async #catchUp(through: number): Promise<void> {
    while (this.#delivered < through) {
      this.#reading ??= this.#readPage().finally(() => {
        this.#reading = undefined;
      });
      if (!(await this.#reading)) {
        // The log no longer reaches back (pruned, or written without a log): nothing to replay.
        this.#delivered = Math.max(this.#delivered, through);
        return;
      }
    }
  }

  /** Reads and delivers one page after the delivered version; false when the log had nothing to give. */
  async #readPage(): Promise<boolean> {
    const page = await readChanges(this.#source.executor(), this.#delivered, {}, PAGE, likePrefix);
    if (page.reset) return false;
    this.#dispatch(page.changes);
    return page.changes.length > 0;
  }

  #dispatch(events: readonly StateEvent[]): void {
    for (const e of events) {
      if (e.version <= this.#delivered) continue;
      this.#delivered = e.version;
      this.#source.hub.dispatch(e);
    }
  }
}
