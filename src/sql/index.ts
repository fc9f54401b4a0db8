export {
  type Dialect,
  escapeLike,
  likePrefix,
  postgresDialect,
  type SqlStatement,
  sqliteDialect,
  type TransactionLockKey,
} from "./dialect.js";
export type {
  Database,
  Executor,
  ExecutorOptions,
  IterateOptions,
  Row,
  RunResult,
  SqlParams,
  SqlValue,
  TransactionOptions,
} from "./executor.js";
export { type AppliedMigration, type MigrationPlan, planMigrations } from "./migration-plan.js";
export { MIGRATIONS_TABLE, type MigrationResult, runMigrations } from "./migration-runner.js";
export { type Migration, MigrationSet } from "./migration-set.js";
export type { PgPool } from "./postgres/postgres-client.js";
export { openPostgres, PostgresDatabase, type PostgresOptions } from "./postgres/postgres-database.js";
export { isRetryableTransactionError } from "./postgres/postgres-errors.js";
export { columnNames, tableExists } from "./schema-introspection.js";
export type { SqliteEngine } from "./sqlite/sqlite-connection.js";
export {
  type BackgroundCheckpointOptions,
  type CheckpointMode,
  openSqlite,
  SqliteDatabase,
  type SqliteOptions,
  type WalCheckpointResult,
} from "./sqlite/sqlite-database.js";
export {
  defaultSqliteEngine,
  nodeSqliteStable,
  parseSqliteEngine,
  SQLITE_ENGINE_ENV,
  SQLITE_ENGINES,
} from "./sqlite/sqlite-engine.js";
export { asSyncReader, type SyncReader } from "./sync-reader.js";
export { takeTransactionLock } from "./transaction-lock.js";
