import { NotFoundError, ReadOnlyError } from "../errors.js";
import { redactUrl } from "../internal/redact.js";
import { type Executor, MIGRATIONS_TABLE, type MigrationSet, planMigrations, tableExists } from "../sql/index.js";

/** How a command names the store it needs in its messages. */
export interface MigratedStoreOptions {
  /** The database as given on the command line; a URL's password is shown as `***`. */
  path: string;
  /** `"no <absent> in <path>"`, e.g. `"state store"`. */
  absent: string;
  /** Why it is absent and what creates it, e.g. `"no state tables; only state set creates them"`. */
  creators: string;
  /** What upgrades an older layout, e.g. `"state set and state delete do"`. */
  upgraders: string;
  /** Tables of layouts older than the migration records: any of them is an older store, not none. */
  legacyTables?: readonly string[];
  /** Accept an older layout (for a command that writes: opening its store upgrades it). Default `false`. */
  allowOlder?: boolean;
  op: string;
}

/**
 * Whether `set` has been applied to `db`, checked with reads only: `"current"` when every
 * migration is, `"older"` when some are (or only a legacy table exists), `"absent"` when
 * none is.
 */
export async function migrationState(
  db: Executor,
  set: MigrationSet,
  legacyTables: readonly string[] = [],
): Promise<{ state: "absent" | "older" | "current"; pending: readonly string[] }> {
  const applied = (await tableExists(db, MIGRATIONS_TABLE))
    ? await db.all<{ id: string; ordinal: number | string }>(
        `SELECT id, ordinal FROM ${MIGRATIONS_TABLE} WHERE set_name = $1 ORDER BY ordinal`,
        [set.name],
      )
    : [];
  const pending = planMigrations(
    set,
    applied.map((r) => ({ id: r.id, ordinal: Number(r.ordinal) })),
  ).pending.map((p) => p.migration.id);
  if (applied.length > 0) return { state: pending.length === 0 ? "current" : "older", pending };
  for (const table of legacyTables) if (await tableExists(db, table)) return { state: "older", pending };
  return { state: "absent", pending };
}

/**
 * Throws {@link NotFoundError} when `db` holds none of `set`'s tables and, unless `allowOlder`,
 * {@link ReadOnlyError} when it holds an older layout, so a command that only reads never
 * creates or upgrades tables (it then opens its store with `migrate: false`).
 */
export async function requireMigratedStore(
  db: Executor,
  set: MigrationSet,
  options: MigratedStoreOptions,
): Promise<void> {
  const { state, pending } = await migrationState(db, set, options.legacyTables);
  const shown = redactUrl(options.path);
  if (state === "absent")
    throw new NotFoundError(`no ${options.absent} in ${shown} (${options.creators})`, { op: options.op });
  if (state === "older" && options.allowOlder !== true)
    throw new ReadOnlyError(
      `the ${options.absent} in ${shown} predates this version (${pending.join(", ")} not applied); commands that only read do not upgrade it, ${options.upgraders}`,
      { op: options.op },
    );
}
