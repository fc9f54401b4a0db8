import { DeleteQueue, type DeleteQueueOptions } from "../../src/uploads/delete-queue.js";
import type { PendingDelete } from "../../src/uploads/pending-delete.js";
import type { UploadsCallOptions } from "../../src/uploads/uploads-call-options.js";

/** Shared record of which worker holds which row right now, across every tracked queue. */
export class LeaseLedger {
  readonly active = new Map<string, string>();
  readonly overlaps: string[] = [];
  leasedTotal = 0;
}

/** A real {@link DeleteQueue} that records leases in a {@link LeaseLedger} and flags a row leased while another worker holds it. */
export class TrackingDeleteQueue extends DeleteQueue {
  readonly #ledger: LeaseLedger;
  readonly #worker: string;

  constructor(options: DeleteQueueOptions, ledger: LeaseLedger, worker: string) {
    super(options);
    this.#ledger = ledger;
    this.#worker = worker;
  }

  override async lease(now: number, limit: number, leaseMs: number): Promise<PendingDelete[]> {
    const rows = await super.lease(now, limit, leaseMs);
    for (const row of rows) {
      const holder = this.#ledger.active.get(row.id);
      if (holder !== undefined) this.#ledger.overlaps.push(`${row.id} held by ${holder}, leased by ${this.#worker}`);
      this.#ledger.active.set(row.id, this.#worker);
    }
    this.#ledger.leasedTotal += rows.length;
    return rows;
  }

  override async done(ids: readonly string[], options?: UploadsCallOptions): Promise<number> {
    for (const id of ids) this.#ledger.active.delete(id);
    return super.done(ids, options);
  }
}
