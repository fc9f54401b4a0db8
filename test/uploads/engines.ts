import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe } from "vitest";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

/** What an engine-parameterised suite gets: the migrated database of the current test. */
export interface EngineContext {
  readonly name: "sqlite" | "postgres";
  readonly db: Database;
  /** URL (postgres) or file path (sqlite) of the database, to open more handles. */
  readonly location: string;
}

const TABLES = [
  "storeroom_upload_offsets",
  "storeroom_upload_parts",
  "storeroom_upload_claims",
  "storeroom_pending_deletes",
  "storeroom_delete_dead_letters",
  "storeroom_upload_deliveries",
  "storeroom_upload_outbox",
];

/** Registers `suite` once per engine: SQLite (a fresh file per test) and PostgreSQL (a fresh database per file, emptied per test). */
export function forEachEngine(title: string, suite: (ctx: () => EngineContext) => void): void {
  describe(`sqlite: ${title}`, () => {
    const dir = useTempDir("storeroom-uploads-");
    let current: EngineContext | undefined;
    let n = 0;
    beforeEach(async () => {
      const location = join(dir, `db-${n++}.sqlite`);
      const db = await openSqlite(location);
      await db.migrate(uploadsMigrations);
      current = { name: "sqlite", db, location };
    });
    afterEach(async () => {
      await current?.db.close();
    });
    suite(() => current as EngineContext);
  });
  describe.runIf(hasPostgres)(`postgres: ${title}`, () => {
    const pgdb = { name: "", url: "" };
    let db: Database | undefined;
    beforeAll(async () => {
      Object.assign(pgdb, await createDatabase("uploads"));
      db = await openPostgres(pgdb.url, { max: 5 });
      await db.migrate(uploadsMigrations);
    });
    // One hook closes the pool and then drops the database, so no idle client sees the drop.
    afterAll(async () => {
      await db?.close();
      if (pgdb.name !== "") await dropDatabase(pgdb.name);
    });
    beforeEach(async () => {
      for (const t of TABLES) await db?.run(`DELETE FROM ${t}`);
    });
    suite(() => ({ name: "postgres", db: db as Database, location: pgdb.url }));
  });
}
