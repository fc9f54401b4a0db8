import { CorruptDatabaseError, DuplicateMigrationError } from "../errors.js";
import { type AppliedMigration, MigrationSet, planMigrations } from "../sql/index.js";
import type { Store, StoreMigrationResult, Tx } from "./store.js";

/** The reserved namespace holding one record per applied migration: key = id, value = JSON `{"ordinal":n,"set":name}`. */
export const STORE_MIGRATIONS_NAMESPACE = "__store_migrations__";

/**
 * Every migration step first writes its set's row here. Two concurrent steps then conflict on
 * that write, before either runs `up`, so a driver that retries on conflicts (postgres) re-plans
 * instead of running `up` twice.
 */
export const STORE_MIGRATIONS_LOCK_NAMESPACE = "__store_migrations_lock__";

interface StoreMigrationRecord extends AppliedMigration {
  readonly set: string;
}

type Step = { readonly applied: string | undefined; readonly ahead: readonly string[] };

/**
 * The one migration runner every driver's {@link Store.migrate} delegates to, so the rules are
 * identical across drivers. Each step is its own `update`: it re-reads the records, re-plans
 * with the sql module's {@link planMigrations}, applies the first pending migration and writes
 * its record in the same transaction. Concurrent runs therefore apply each migration once.
 * An absent set behaves as an empty set named `"default"`.
 */
export async function runStoreMigrations(store: Store, set?: MigrationSet<Tx>): Promise<StoreMigrationResult> {
  const migrations = set ?? new MigrationSet<Tx>();
  const applied: string[] = [];
  for (;;) {
    const step = await store.update((tx) => migrateOne(tx, migrations));
    if (step.applied === undefined) return { applied, ahead: step.ahead };
    applied.push(step.applied);
  }
}

async function migrateOne(tx: Tx, set: MigrationSet<Tx>): Promise<Step> {
  await tx.put(STORE_MIGRATIONS_LOCK_NAMESPACE, set.name, new Uint8Array(0));
  const records = await readRecords(tx);
  const plan = planMigrations(
    set,
    records.filter((r) => r.set === set.name),
  );
  const next = plan.pending[0];
  if (next === undefined) return { applied: undefined, ahead: plan.ahead };
  const clash = records.find((r) => r.id === next.migration.id);
  if (clash !== undefined) {
    throw new DuplicateMigrationError(
      `migration id "${clash.id}" was already applied by set "${clash.set}"; prefix ids with their module`,
      { op: "kv.migrate" },
    );
  }
  await next.migration.up(tx);
  const record = JSON.stringify({ ordinal: next.ordinal, set: set.name });
  await tx.put(STORE_MIGRATIONS_NAMESPACE, next.migration.id, new TextEncoder().encode(record));
  return { applied: next.migration.id, ahead: plan.ahead };
}

async function readRecords(tx: Tx): Promise<StoreMigrationRecord[]> {
  const entries = await tx.scan(STORE_MIGRATIONS_NAMESPACE, "");
  const decoder = new TextDecoder();
  return entries.map(({ key, value }) => {
    let parsed: { ordinal?: unknown; set?: unknown };
    try {
      parsed = JSON.parse(decoder.decode(value));
    } catch (err) {
      throw new CorruptDatabaseError(`migration record "${key}" is not JSON`, { op: "kv.migrate", cause: err });
    }
    if (!Number.isSafeInteger(parsed.ordinal) || (parsed.ordinal as number) < 0) {
      throw new CorruptDatabaseError(`migration record "${key}" has no valid ordinal`, { op: "kv.migrate" });
    }
    const setName = typeof parsed.set === "string" ? parsed.set : "default";
    return { id: key, ordinal: parsed.ordinal as number, set: setName };
  });
}
