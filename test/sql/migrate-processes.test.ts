import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const run = promisify(execFile);
const child = new URL("./fixtures/migrate-child.ts", import.meta.url).pathname;
const PROCESSES = 4;

async function raceAndCheck(engine: "sqlite" | "postgres", target: string, open: () => Promise<Database>) {
  const outputs = await Promise.all(
    Array.from({ length: PROCESSES }, () => run(process.execPath, ["--import", "tsx", child, engine, target])),
  );
  const applied = outputs.flatMap((o) => JSON.parse(o.stdout.trim()) as string[]);
  expect(applied.sort()).toEqual(["race/0", "race/1", "race/2", "race/3", "race/4"]);
  const db = await open();
  const rows = await db.all<{ id: string }>("SELECT id FROM race_log ORDER BY id");
  expect(rows.map((r) => r.id)).toEqual(["race/0", "race/1", "race/2", "race/3", "race/4"]);
  const records = await db.all<{ id: string; ordinal: number }>(
    "SELECT id, ordinal FROM storeroom_migrations WHERE set_name = $1 ORDER BY ordinal",
    ["race"],
  );
  expect(records).toEqual([0, 1, 2, 3, 4].map((i) => ({ id: `race/${i}`, ordinal: i })));
  await db.close();
}

describe("several processes migrating at once", () => {
  const dir = useTempDir();
  it("apply each migration exactly once on one SQLite file", async () => {
    const path = join(dir, "race.db");
    await raceAndCheck("sqlite", path, () => openSqlite(path));
  });

  describe.runIf(hasPostgres)("postgres", () => {
    const fresh = useFreshPostgresDatabase();
    it("apply each migration exactly once on one PostgreSQL database", async () => {
      await raceAndCheck("postgres", fresh.url, () => openPostgres(fresh.url));
    });
  });
});
