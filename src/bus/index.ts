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
export { blake3Hex } from "./blake3-hex.js";
export type { BusMessage, BusPeer, NewBusMessage } from "./bus-message.js";
export { busMigrations } from "./bus-migrations.js";
export { type MarkOptions, MessageStore, type MessageStoreOptions, type PendingOptions } from "./message-store.js";
