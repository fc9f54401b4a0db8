import type { Clock } from "../clock.js";
import type { Envelope } from "./wire/envelope.js";
import type { HmacSecret } from "./wire/envelope-hmac.js";

/** One message handed to {@link BusClientOptions.onMessage}. */
export interface BusDelivery {
  /** The envelope id (the dedupe key). */
  readonly id: string;
  readonly from: string;
  /** The recipient name, or `"*"` for a broadcast. */
  readonly to: string;
  readonly kind: "msg" | "broadcast";
  /** The parsed body. */
  readonly body: unknown;
  /** The whole verified envelope, body as raw JSON text. */
  readonly envelope: Envelope;
  /** The broker's row key this delivery is acked by. */
  readonly deliveryKey: string;
}

/** Options of {@link BusClient}. */
export interface BusClientOptions {
  /**
   * Broker URL, e.g. `ws://127.0.0.1:47821` (`ws:`, `wss:`, `http:`, `https:` or `ws+unix:`,
   * without a fragment); anything else throws {@link InvalidArgumentError} in the constructor.
   */
  url: string;
  /** Peer name to register. */
  name: string;
  /** Bearer token. */
  token: string;
  /** Shared HMAC secret (at least 32 bytes): signs sends, verifies deliveries. */
  hmacSecret: HmacSecret;
  /**
   * Called once per message id, one message at a time, per-sender FIFO. The message is acked
   * after the returned promise resolves; if it rejects, the message is not acked and comes back
   * on the next reconnect.
   */
  onMessage: (message: BusDelivery) => Promise<void> | void;
  /** Receives faults: an envelope with a bad HMAC (dropped), a handler rejection, a refused frame. Default: `console.error`. */
  onError?: (err: unknown) => void;
  /** Ids remembered for dedupe (LRU). Default 4096. */
  dedupeSize?: number;
  /** First reconnect delay; doubles per failed attempt, with jitter. Default 100 ms. */
  minBackoffMs?: number;
  /** Largest reconnect delay. Default 5000 ms. */
  maxBackoffMs?: number;
  /** `source` of sent envelopes. Default `"storeroom"`. */
  source?: string;
  /** How long {@link BusClient.peers} waits for the reply. Default 5000 ms. */
  peersTimeoutMs?: number;
  /** Clock for envelope `ts`. Default the system clock. */
  clock?: Clock;
  /**
   * Extra HTTP headers of the WebSocket upgrade request, e.g. `{ authorization: "Bearer ..." }`
   * for `storeroom serve`'s `/v1/bus`. Default none.
   */
  headers?: Record<string, string>;
}
