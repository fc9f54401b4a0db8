import { isStoreError } from "../errors.js";
import { brokerAuditEvent } from "./broker-events.js";
import type { NewBusMessage } from "./bus-message.js";
import type { CommitBatch, CommitOp } from "./commit-pipeline.js";
import type { DeliveryLane } from "./delivery-lane.js";
import type { MessageStore } from "./message-store.js";
import { BROADCAST, type Envelope } from "./wire/envelope.js";
import { deliverFrameSize, encodeDeliver } from "./wire/frames.js";

/** Rows a drain reads per commit. */
export const DRAIN_PAGE = 256;

/** An accepted envelope with the bytes stored and delivered for it. */
export interface Accepted {
  readonly env: Envelope;
  /** {@link encodeEnvelope}'s text as the frame's exact bytes. */
  readonly bytes: Buffer;
}

/** Where the sends of one batch of envelopes went. */
export interface SendOutcome {
  /** Envelopes with a recipient that was never registered. */
  readonly unknownPeer: Envelope[];
  /** Envelopes whose deliver frame would exceed the frame size limit. */
  readonly tooBig: Envelope[];
}

/**
 * Stores accepted envelopes of `sender`: one row per recipient (`<id>|<name>` for broadcast
 * copies), their `send` audit rows, and for a recipient whose lane is live the `deliver` row too,
 * with the frame written after the commit. A recipient without a live lane gets its row
 * queued and its lane `kick`ed. Duplicates are skipped, as peerbus skips them.
 */
export function sendOp(
  store: MessageStore,
  lanes: (name: string) => DeliveryLane | undefined,
  kick: (lane: DeliveryLane) => void,
  sender: string,
  envelopes: readonly Accepted[],
  broadcastTo: readonly string[],
  maxFrameBytes: number,
  outcome: SendOutcome,
): CommitOp {
  return {
    weight: envelopes.length,
    async run(tx, batch) {
      // A batch that failed runs again: start from nothing.
      outcome.unknownPeer.length = 0;
      outcome.tooBig.length = 0;
      const copies: NewBusMessage[] = [];
      const sources: Envelope[] = [];
      const targets: (DeliveryLane | undefined)[] = [];
      // An attached lane's registration committed: its name needs no lookup.
      const registered = new Set<string>();
      for (const { env, bytes } of envelopes) {
        for (const to of env.to === BROADCAST ? broadcastTo : [env.to]) {
          const id = env.to === BROADCAST ? `${env.id}|${to}` : env.id;
          if (deliverFrameSize(id, bytes.length) > maxFrameBytes) {
            if (!outcome.tooBig.includes(env)) outcome.tooBig.push(env);
            continue;
          }
          const lane = lanes(to);
          if (lane?.attached === true) registered.add(to);
          copies.push({ id, from: sender, to, envelope: bytes, delivered: lane !== undefined && liveNow(lane, batch) });
          sources.push(env);
          targets.push(lane);
        }
      }
      const results = await store.enqueueMany(copies, { executor: tx, registered });
      results.forEach((result, k) => {
        const copy = copies[k] as NewBusMessage;
        const lane = targets[k];
        if (result === "unknown_peer") {
          const env = sources[k] as Envelope;
          if (!outcome.unknownPeer.includes(env)) outcome.unknownPeer.push(env);
        }
        if (result !== "stored") return;
        batch.audit.push(brokerAuditEvent("send", copy.id, sender, copy.to));
        if (lane === undefined) return;
        if (copy.delivered === true) {
          batch.audit.push(brokerAuditEvent("deliver", copy.id, sender, copy.to));
          const frame = encodeDeliver(copy.id, copy.envelope);
          batch.after(() => lane.write(frame));
        } else batch.after(() => kick(lane));
      });
    },
  };
}

/** A live lane that is backed up stops being live: its messages queue and a drain sends them with backpressure. */
function liveNow(lane: DeliveryLane, batch: CommitBatch): boolean {
  if (!batch.isLive(lane)) return false;
  if (lane.writable) return true;
  batch.setLive(lane, false);
  return false;
}

/** Acks the ids `name` acked (only rows addressed to it) and writes an `ack` row per newly acked message. */
export function ackOp(store: MessageStore, name: string, ids: readonly string[]): CommitOp {
  return {
    weight: ids.length,
    async run(tx, batch) {
      for (const id of await store.ackFor(name, ids, { executor: tx })) {
        batch.audit.push(brokerAuditEvent("ack", id, name, ""));
      }
    },
  };
}

/**
 * One page of `lane`'s pending rows: marked delivered with their `deliver` audit rows, the
 * frames written after the commit (`page.last` settles once the last one left the process).
 * A page that is not full means nothing else is pending: the lane goes live in that commit.
 */
export function drainOp(
  store: MessageStore,
  lane: DeliveryLane,
  page: { full: boolean; last: Promise<void> },
): CommitOp {
  return {
    weight: 1,
    async run(tx, batch) {
      const rows = await store.pendingFor(lane.name, { limit: DRAIN_PAGE, executor: tx });
      page.full = rows.length === DRAIN_PAGE;
      if (!page.full) batch.setLive(lane, true);
      if (rows.length === 0) return;
      await store.markDelivered(
        rows.map((r) => r.id),
        { recipient: lane.name, executor: tx },
      );
      for (const r of rows) batch.audit.push(brokerAuditEvent("deliver", r.id, r.from, r.to));
      batch.after(() => {
        page.last = new Promise<void>((resolve) => {
          rows.forEach((r, k) => {
            lane.write(encodeDeliver(r.id, r.envelope), k === rows.length - 1 ? resolve : undefined);
          });
        });
      });
    },
  };
}

/**
 * Persists a registration: the peer row (with a persistent binding when `bind` is given) and
 * its delivered-but-unacked rows made pending again. `result.claimed` is set when a stored
 * binding of another token refused the name; nothing is written then.
 */
export function attachOp(
  store: MessageStore,
  name: string,
  bind: { tokenHash: string; expireAfterMs: number } | undefined,
  result: { claimed: boolean },
): CommitOp {
  return {
    weight: 1,
    async run(tx) {
      if (bind === undefined) await store.register({ name }, { executor: tx });
      else {
        try {
          await store.bindToken(name, bind.tokenHash, { expireAfterMs: bind.expireAfterMs, executor: tx });
        } catch (err) {
          if (!isStoreError(err, "ACCESS_DENIED")) throw err;
          result.claimed = true;
          return;
        }
      }
      await store.requeueUnacked(name, { executor: tx });
    },
  };
}
