import { MigrationOutOfOrderError } from "../errors.js";
import type { Migration, MigrationSet } from "./migration-set.js";

/** A migration recorded as applied: its id and the ordinal it was applied at. */
export interface AppliedMigration {
  readonly id: string;
  readonly ordinal: number;
}

/** What a set still has to do against a database's applied records. */
export interface MigrationPlan<TTx> {
  /** Migrations to apply, in order, with their ordinals. */
  readonly pending: readonly { migration: Migration<TTx>; ordinal: number }[];
  /** Applied ids beyond the end of the set: the database is ahead of this code. Not an error. */
  readonly ahead: readonly string[];
}

/**
 * Compares a set with the applied records of that set and returns what to apply.
 *
 * The rule: applied records must match the set position by position. The record at ordinal
 * `i` must carry the id of the set's `i`-th migration; otherwise the migration was reordered
 * (its id sits elsewhere in the set) or removed (its id is gone), and
 * {@link MigrationOutOfOrderError} is thrown. Records at ordinals past the end of the set
 * mean the set is a prefix of what was applied (older code, or an empty set): that is
 * reported in `ahead` and is not an error. Shared by the SQL runner and the kv runner.
 */
export function planMigrations<TTx>(set: MigrationSet<TTx>, applied: readonly AppliedMigration[]): MigrationPlan<TTx> {
  const migrations = set.list();
  const position = new Map(migrations.map((m, i) => [m.id, i]));
  const byOrdinal = [...applied].sort((a, b) => a.ordinal - b.ordinal);
  const ahead: string[] = [];
  const done = new Set<number>();
  for (const record of byOrdinal) {
    if (record.ordinal >= migrations.length) {
      if (position.has(record.id)) {
        throw new MigrationOutOfOrderError(
          `migration "${record.id}" was applied at ordinal ${record.ordinal} but is now at ${position.get(record.id)} in set "${set.name}"`,
        );
      }
      ahead.push(record.id);
      continue;
    }
    const expected = migrations[record.ordinal];
    if (expected?.id !== record.id) {
      const now = position.get(record.id);
      throw new MigrationOutOfOrderError(
        now === undefined
          ? `applied migration "${record.id}" (ordinal ${record.ordinal}) was removed from set "${set.name}"`
          : `migration "${record.id}" was applied at ordinal ${record.ordinal} but is now at ${now} in set "${set.name}"`,
      );
    }
    done.add(record.ordinal);
  }
  const pending = migrations.flatMap((migration, ordinal) => (done.has(ordinal) ? [] : [{ migration, ordinal }]));
  if (pending.length > 0 && ahead.length > 0) {
    throw new MigrationOutOfOrderError(
      `set "${set.name}" has unapplied migrations before applied ones it does not know (${ahead.join(", ")})`,
    );
  }
  const firstPending = pending[0]?.ordinal ?? migrations.length;
  if (done.size > 0 && Math.max(...done) > firstPending) {
    throw new MigrationOutOfOrderError(
      `migration "${migrations[firstPending]?.id}" was inserted before applied migrations in set "${set.name}"`,
    );
  }
  return { pending, ahead };
}
