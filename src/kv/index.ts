export { drivers, openStore, registerDriver } from "./driver-registry.js";
export { MemoryStore, openMemoryStore } from "./memory-store.js";
export { kvTableMigrations, openSqlStore, SqlStore, type SqlStoreOptions } from "./sql-store.js";
export type { KvEntry, ScanRange, Store, StoreFactory, StoreMigrationResult, Tx } from "./store.js";
export { runStoreMigrations, STORE_MIGRATIONS_LOCK_NAMESPACE, STORE_MIGRATIONS_NAMESPACE } from "./store-migrations.js";
