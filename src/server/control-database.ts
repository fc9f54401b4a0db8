import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { busMigrations } from "../bus/index.js";
import type { Clock } from "../clock.js";
import type { Database, MigrationResult } from "../sql/index.js";
import { openPostgres, openSqlite } from "../sql/index.js";
import { tenantsMigrations } from "../tenants/index.js";
import { uploadsMigrations } from "../uploads/index.js";
import { serverMigrations } from "./server-migrations.js";

/** The migration sets of the control database, in the order they are applied. */
export const controlMigrationSets = Object.freeze([
  uploadsMigrations,
  busMigrations,
  serverMigrations,
  tenantsMigrations,
]);

/** True when `target` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(target: string): boolean {
  return /^postgres(ql)?:\/\//.test(target);
}

/**
 * Opens the control database (uploads + bus tables): `postgres://...` on PostgreSQL, anything
 * else as a SQLite file path (its directory is created).
 */
export async function openControlDatabase(target: string, clock?: Clock): Promise<Database> {
  if (isPostgresUrl(target)) return openPostgres(target, clock === undefined ? {} : { clock });
  const path = resolve(target);
  await mkdir(dirname(path), { recursive: true });
  return openSqlite(path, clock === undefined ? {} : { clock });
}

/** Applies every control migration set; returns what each applied. */
export async function migrateControlDatabase(db: Database): Promise<{ set: string; result: MigrationResult }[]> {
  const results = [];
  for (const set of controlMigrationSets) results.push({ set: set.name, result: await db.migrate(set) });
  return results;
}
