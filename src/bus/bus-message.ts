import { InvalidArgumentError } from "../errors.js";

/** A peer registered on the bus. Times are ms from the store's clock. */
export interface BusPeer {
  readonly name: string;
  /** Last registration. */
  readonly registered: number;
  /** First registration; kept when the peer registers again. */
  readonly firstSeen: number;
  /** Last time the peer was seen connected: its last registration or disconnect ({@link MessageStore.markSeen}). */
  readonly lastSeen: number;
}

/** What {@link MessageStore.enqueue} takes. */
export interface NewBusMessage {
  /** Unique message id; the dedupe key. */
  readonly id: string;
  /** Sender name (need not be registered); each sender gets its own FIFO `seq`. */
  readonly from: string;
  /** Recipient name; must be registered. */
  readonly to: string;
  /** The opaque envelope bytes, stored and returned verbatim. */
  readonly envelope: Uint8Array;
  /**
   * {@link MessageStore.enqueueMany} only: store it as already handed to a connection
   * (delivered, 1 attempt), for a broker that writes the frame right after the commit. Default `false`.
   */
  readonly delivered?: boolean;
}

/** What became of one message of {@link MessageStore.enqueueMany}. */
export type EnqueueOutcome = "stored" | "duplicate" | "unknown_peer";

/** One durable queue row. */
export interface BusMessage {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly envelope: Uint8Array;
  readonly delivered: boolean;
  readonly acked: boolean;
  /** Times the message was handed to a connection. */
  readonly attempts: number;
  /**
   * Position in the sender's stream: increases with every message of the sender, from 0.
   * Dense for {@link MessageStore.enqueue}; {@link MessageStore.enqueueMany} leaves gaps (it
   * reserves seqs in blocks).
   */
  readonly seq: number;
  /** Enqueue time, ms. */
  readonly ts: number;
}

/**
 * Rejects names and ids the bus cannot store alike on both engines: empty, with U+0000, or with
 * a lone surrogate (PostgreSQL would store U+FFFD, so two names would become one; SQLite bytes
 * that read back as other text). Names and ids decoded from the wire never hold one.
 */
export function checkBusName(value: unknown, what: string, op: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string`, { op });
  }
  if (value.includes("\u0000")) throw new InvalidArgumentError(`${what} must not contain U+0000`, { op });
  if (!value.isWellFormed()) throw new InvalidArgumentError(`${what} must not contain a lone surrogate`, { op });
  return value;
}
