export type { BusMessage, BusPeer, NewBusMessage } from "./bus-message.js";
export { busMigrations } from "./bus-migrations.js";
export { type MarkOptions, MessageStore, type MessageStoreOptions, type PendingOptions } from "./message-store.js";
