import type { Clock } from "../clock.js";
import type { Executor } from "./executor.js";
import { type AppliedMigration, planMigrations } from "./migration-plan.js";
import type { MigrationSet } from "./migration-set.js";
import { takeTransactionLock } from "./transaction-lock.js";

/** What {@link Database.migrate} did. */
export interface MigrationResult {
  /** Ids applied by this call, in order. Empty when the database was up to date. */
  readonly applied: readonly string[];
  /** Applied ids past the end of the set (the database is ahead of this code). */
  readonly ahead: readonly string[];
}

/** The table that records applied migrations, one row per (set, id). */
export const MIGRATIONS_TABLE = "storeroom_migrations";

/** Any 64-bit constant works; it only has to be the same in every process. */
const MIGRATION_LOCK = 7_305_861_142_337_981;

/**
 * Applies a set's pending migrations one transaction at a time. Every transaction first takes
 * the database-wide migration lock (SQLite: the write lock of `BEGIN IMMEDIATE`; PostgreSQL: a
 * transaction-scoped advisory lock), then re-reads the applied records and re-plans, so
 * processes migrating at once apply each migration exactly once.
 */
export async function runMigrations(db: Executor, set: MigrationSet<Executor>, clock: Clock): Promise<MigrationResult> {
  const applied: string[] = [];
  for (;;) {
    const step = await db.transaction(async (tx) => {
      await lockMigrations(tx);
      const plan = planMigrations(set, await readApplied(tx, set.name));
      const next = plan.pending[0];
      if (next === undefined) return { done: true as const, ahead: plan.ahead };
      await next.migration.up(tx);
      await tx.run(`INSERT INTO ${MIGRATIONS_TABLE} (set_name, id, ordinal, applied_at) VALUES ($1, $2, $3, $4)`, [
        set.name,
        next.migration.id,
        next.ordinal,
        clock.now(),
      ]);
      return { done: false as const, id: next.migration.id };
    });
    if (step.done) return { applied, ahead: step.ahead };
    applied.push(step.id);
  }
}

async function lockMigrations(tx: Executor): Promise<void> {
  await takeTransactionLock(tx, MIGRATION_LOCK);
  await tx.run(
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
      set_name TEXT NOT NULL,
      id TEXT NOT NULL,
      ordinal INTEGER NOT NULL,
      applied_at ${tx.dialect.bigintType} NOT NULL,
      PRIMARY KEY (set_name, id)
    )`,
  );
}

async function readApplied(tx: Executor, setName: string): Promise<AppliedMigration[]> {
  const rows = await tx.all<{ id: string; ordinal: number | string }>(
    `SELECT id, ordinal FROM ${MIGRATIONS_TABLE} WHERE set_name = $1 ORDER BY ordinal`,
    [setName],
  );
  return rows.map((r) => ({ id: r.id, ordinal: Number(r.ordinal) }));
}
