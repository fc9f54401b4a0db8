import type { TransactionLockKey } from "./dialect.js";
import type { Executor } from "./executor.js";

/**
 * Takes `key`'s lock until `tx`'s transaction ends, where the engine needs one to serialise
 * writers (PostgreSQL advisory locks); on SQLite the writer lock already does, and this runs
 * nothing. Call it inside a write transaction before the reads the lock protects.
 */
export async function takeTransactionLock(tx: Executor, key: TransactionLockKey): Promise<void> {
  const lock = tx.dialect.transactionLock(key);
  if (lock !== undefined) await tx.run(lock.sql, lock.params);
}
