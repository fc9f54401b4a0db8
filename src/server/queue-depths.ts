import { Outbox } from "../uploads/index.js";
import type { OrgBuses } from "./org-buses.js";
import type { ServerParts } from "./server-parts.js";

/** Rows waiting per queue, keyed by the `queue` label of `storeroom_queue_depth` (and shown by the inspector). */
export interface QueueDepths {
  /** Delete-queue rows (due, deferred or leased object deletes). */
  readonly delete: number;
  /** Upload claims still `pending` (unfinished uploads). */
  readonly claims_pending: number;
  /** Upload outbox events not yet dispatched. */
  readonly outbox_pending: number;
  /** Bus messages not yet delivered, summed over the org buses this process has open. */
  readonly bus_pending: number;
}

/** Reads every queue depth; a failing count rejects (the scrape or inspector call fails rather than report a wrong 0). */
export async function readQueueDepths(parts: ServerParts, buses: OrgBuses): Promise<QueueDepths> {
  return {
    delete: await parts.deleteQueue.count(),
    claims_pending: await parts.claims.countPending(),
    outbox_pending: await new Outbox({ database: parts.control }).countPending(),
    bus_pending: await buses.countUndelivered(),
  };
}
