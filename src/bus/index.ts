export {
  type AuditCheckpoint,
  checkpointMessage,
  type KeyInput,
  parseCheckpoint,
  signCheckpoint,
} from "./audit-checkpoint.js";
export {
  AUDIT_GENESIS_HASH,
  type AuditBreak,
  AuditLog,
  type AuditLogOptions,
  type AuditRow,
  type AuditVerifyOptions,
  auditChainHash,
} from "./audit-log.js";
export { backoffDelay } from "./backoff.js";
export { blake3Hex } from "./blake3-hex.js";
export { Broker } from "./broker.js";
export { type BrokerAuditEvent, brokerAuditEvent } from "./broker-events.js";
export type { BrokerOptions } from "./broker-options.js";
export { BusClient, BusRejectedError } from "./bus-client.js";
export type { BusClientOptions, BusDelivery } from "./bus-client-options.js";
export { BusDeliveryError } from "./bus-delivery-error.js";
export type { BusMessage, BusPeer, EnqueueOutcome, NewBusMessage } from "./bus-message.js";
export { busMigrations } from "./bus-migrations.js";
export {
  type BindTokenOptions,
  type EnqueueManyOptions,
  type MarkOptions,
  MessageStore,
  type MessageStoreOptions,
  type PendingOptions,
} from "./message-store.js";
export { BusClose, BusCloseCode, type BusCloseFrame } from "./wire/close-codes.js";
export {
  BROADCAST,
  canonicalEnvelope,
  checkEnvelope,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  parseEnvelope,
} from "./wire/envelope.js";
export {
  canonicalBytes,
  checkEnvelopeHmac,
  envelopeHmac,
  type HmacCheck,
  type HmacSecret,
  MIN_HMAC_SECRET_BYTES,
  signEnvelope,
  verifyEnvelope,
} from "./wire/envelope-hmac.js";
export {
  type AckFrame,
  type DeliverFrame,
  type EnvelopeFrame,
  type ErrorFrame,
  encodeFrame,
  type Frame,
  type PeersFrame,
  parseFrame,
  type RegisterFrame,
} from "./wire/frames.js";
export { MAX_JSON_DEPTH } from "./wire/go-json.js";
export { WireError, type WireErrorReason } from "./wire/wire-error.js";
export { decodeWireText, type WireText, wireBytes } from "./wire/wire-text.js";
