export type { ArchiveFormat } from "./archive-codec.js";
export type { ChangesSince, ChangesSinceOptions } from "./change-log.js";
export { EntryOperations, type KeyValue } from "./entry-operations.js";
export type { FluxEquality, FluxFilter } from "./flux-query.js";
export type { JournalCommit, JournalRow } from "./journal.js";
export type { CompactOptions, CompactResult } from "./journal-compactor.js";
export { type ParsedTemplate, parseTemplate } from "./render-template.js";
export { DEFAULT_GROUP, ScopedOperations, type ScopeQuota } from "./scoped-operations.js";
export { ScopedStateStore } from "./scoped-state-store.js";
export { ScopedStateTransaction } from "./scoped-state-transaction.js";
export type { ChangeCallback, StateEvent, StateEventType } from "./state-event.js";
export { stateMigrations } from "./state-schema.js";
export { StateStore } from "./state-store.js";
export {
  DEFAULT_CHANGE_RETENTION_MS,
  DEFAULT_JOURNAL_BUCKET,
  DEFAULT_PURGE_INTERVAL_MS,
  DEFAULT_WATCH_BUFFER_SIZE,
  DEFAULT_WORKSPACE_STATE_DIRECTORY,
  type JournalConfig,
  type JournalOptions,
  type NormalisedStateConfig,
  normaliseStateConfig,
  normalizeStateStoreOptions,
  type ResolvedStateStoreOptions,
  type StateStoreConfig,
  type StateStoreOptions,
} from "./state-store-options.js";
export { StateTransaction } from "./state-transaction.js";
export { StateWatcher } from "./state-watcher.js";
export type {
  BatchOperation,
  BatchOptions,
  BatchResult,
  DeleteOptions,
  GetEntriesOptions,
  SetOptions,
  StateEntry,
  VersionCheck,
} from "./versioned-entry.js";
export { Workspace } from "./workspace.js";
export type { QuarantinedWorkspace, RecoveredWorkspaces } from "./workspace-recovery.js";
