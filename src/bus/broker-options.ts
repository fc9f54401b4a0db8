import type { Clock } from "../clock.js";
import type { AuditLog } from "./audit-log.js";
import type { MessageStore } from "./message-store.js";
import type { HmacSecret } from "./wire/envelope-hmac.js";

/** Options of {@link Broker}. */
export interface BrokerOptions {
  /** Where messages, peers and name-to-token bindings live. The broker never closes it. */
  store: MessageStore;
  /** Where `send` / `deliver` / `ack` rows go. Default: no audit rows. */
  audit?: AuditLog;
  /** Accepted static bearer tokens (peerbus `PEERBUS_TOKENS`). Required unless `authenticate` is given. */
  tokens?: readonly string[];
  /**
   * Decides whether a register token is valid, instead of `tokens` (e.g. per-organisation API
   * keys when a server mounts one broker per org). Default: membership in `tokens`.
   */
  authenticate?: (token: string) => boolean | Promise<boolean>;
  /**
   * Decides whether a connection may register `name`, after its token was accepted and before
   * the name is bound. `context` is what the mounting server passed to
   * {@link Broker.handleUpgrade} (`undefined` on the broker's own listener), e.g. the caller it
   * authenticated, so a server can tie peer names to its own identities. Returning anything
   * but `true` refuses the registration with 1008 "name claimed under a different token" (what
   * peerbus clients recognise to pick another name) and leaves any peer already registered
   * under the name untouched; a throw closes the connection with 1011 and goes to `onError`.
   * Default: every name is allowed.
   */
  authorizeRegistration?: (name: string, context: unknown) => boolean | Promise<boolean>;
  /**
   * Whether a peer name stays bound to the token that registered it after the connection ends.
   * `false` (default, as peerbus): a name is bound only while a connection holds it; another
   * token may register it as soon as it is free, also after a restart. `true`: the binding is
   * stored, survives disconnects and restarts, and expires after {@link BrokerOptions.bindingTtlMs}.
   */
  persistentBindings?: boolean;
  /**
   * With `persistentBindings`, a binding whose peer has not been seen connected for this many
   * ms expires and the name is free again. Default 7 days; `Infinity` never expires.
   */
  bindingTtlMs?: number;
  /**
   * Which peers get a copy of a broadcast, besides the sender: those connected now (default
   * `0`, as peerbus) and, when greater than 0, every peer seen connected within the last
   * `broadcastWindowMs` ms, whose copies wait for them durably. `Infinity` means every peer
   * ever registered.
   */
  broadcastWindowMs?: number;
  /** Shared HMAC secret (at least 32 bytes); envelopes whose HMAC does not verify are refused. */
  hmacSecret: HmacSecret;
  /**
   * Group commit: how long the broker may wait for more writes before committing a batch. Default
   * `0`: a batch takes what already arrived when the event loop comes round (no added latency);
   * writes that arrive while a batch commits join the next one.
   */
  commitWindowMs?: number;
  /** Group commit: most messages per commit (a batch starts at once when this many are waiting). Default 256. */
  maxCommitBatch?: number;
  /** Largest accepted frame in bytes; bigger frames close the connection with 1009. Default 1 MiB. */
  maxFrameBytes?: number;
  /**
   * How long an acked message's row is kept, in ms, so a re-sent id is still recognised as a
   * duplicate (and not delivered again); afterwards a background job deletes it. Default 1 hour;
   * `0` deletes acked rows at the next prune run (duplicate detection then ends with it);
   * `Infinity` keeps them forever (the table grows with every message).
   */
  ackedRetentionMs?: number;
  /**
   * Milliseconds between runs of the prune job, which deletes expired acked rows in batches of
   * 1,000. Default 60,000; `0` disables the timer ({@link Broker.pruneAcked} still prunes).
   */
  pruneIntervalMs?: number;
  /** Schedules the prune job (a {@link ManualScheduler} in tests). Default: the system clock. */
  clock?: Clock;
  /** Receives faults that no client can be told about (a storage error in a drain). Default: `console.error`. */
  onError?: (err: unknown) => void;
}
