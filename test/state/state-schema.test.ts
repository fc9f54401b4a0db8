import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { StateStore } from "../../src/state/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const NOW = 1_000_000;

describe("sqlite: state schema upgrades from older layouts", () => {
  const dir = useTempDir("storeroom-state-schema-");
  let n = 0;
  const fresh = () => openSqlite(join(dir, `s${n++}.db`));

  it("copies a legacy kv(grp, key, value) table into entries and drops it", async () => {
    const db = await fresh();
    await db.run("CREATE TABLE kv (grp TEXT, key TEXT, value TEXT, PRIMARY KEY (grp, key))");
    await db.run("INSERT INTO kv VALUES ('config', 'colour', 'blue'), ('config', 'size', 'L'), ('other', 'k', 'v')");
    const s = await StateStore.open({ database: db, clock: new ManualClock(NOW) });
    expect(await s.getAll("config")).toEqual(
      new Map([
        ["colour", "blue"],
        ["size", "L"],
      ]),
    );
    expect(await db.get("SELECT name FROM sqlite_master WHERE name = 'kv'")).toBeUndefined();
    await s.close();
    await db.close();
  });

  it("keeps the expiry of a legacy kv table that has expires_at", async () => {
    const db = await fresh();
    await db.run("CREATE TABLE kv (grp TEXT, key TEXT, value TEXT, expires_at INTEGER, PRIMARY KEY (grp, key))");
    await db.run("INSERT INTO kv VALUES ('g', 'live', 'a', NULL), ('g', 'dead', 'b', $1), ('g', 'later', 'c', $2)", [
      NOW - 1,
      NOW + 10,
    ]);
    const clock = new ManualClock(NOW);
    const s = await StateStore.open({ database: db, clock });
    expect([...(await s.getAll("g")).keys()].sort()).toEqual(["later", "live"]);
    clock.advance(10);
    expect(await s.exists("g", "later")).toBe(false);
    await s.close();
    await db.close();
  });

  it("adds expires_at to an entries table created before TTL support", async () => {
    await expectPreTtlUpgrade(await fresh());
  });

  it("merges a legacy kv table into an existing entries table; entries rows win", async () => {
    const db = await fresh();
    await db.run(
      "CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL, PRIMARY KEY (group_name, entry_key))",
    );
    await db.run("INSERT INTO entries VALUES ('g', 'k', 'current')");
    await db.run("CREATE TABLE kv (grp TEXT, key TEXT, value TEXT)");
    await db.run("INSERT INTO kv VALUES ('g', 'k', 'legacy'), ('g', 'only-legacy', 'x')");
    const s = await StateStore.open({ database: db, clock: new ManualClock(NOW) });
    expect(await s.get("g", "k")).toBe("current");
    expect(await s.get("g", "only-legacy")).toBe("x");
    await s.close();
    await db.close();
  });

  it("a failing upgrade leaves the old layout untouched (migration is one transaction)", async () => {
    const db = await fresh();
    // NULL values violate entries.entry_value NOT NULL, so the copy fails.
    await db.run("CREATE TABLE kv (grp TEXT, key TEXT, value TEXT)");
    await db.run("INSERT INTO kv VALUES ('g', 'k', NULL)");
    await expect(StateStore.open({ database: db })).rejects.toMatchObject({ code: "CONSTRAINT" });
    expect(await db.get("SELECT name FROM sqlite_master WHERE name = 'kv'")).toEqual({ name: "kv" });
    expect(await db.get("SELECT name FROM sqlite_master WHERE name = 'entries'")).toBeUndefined();
    await db.close();
  });
});

describe.runIf(hasPostgres)("postgres: state schema upgrades from older layouts", () => {
  const pg = useFreshPostgresDatabase();
  let n = 0;
  const fresh = () => openPostgres(pg.url, { schema: `upgrade_${n++}`, max: 2 });

  it("copies a legacy kv table with expires_at and drops it", async () => {
    const db = await fresh();
    await db.run("CREATE TABLE kv (grp TEXT, key TEXT, value TEXT, expires_at BIGINT)");
    await db.run("INSERT INTO kv VALUES ('g', 'live', 'a', NULL), ('g', 'dead', 'b', $1)", [NOW - 1]);
    const s = await StateStore.open({ database: db, clock: new ManualClock(NOW) });
    expect(await s.getAll("g")).toEqual(new Map([["live", "a"]]));
    expect(
      await db.get(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'kv'",
      ),
    ).toBeUndefined();
    await s.close();
    await db.close();
  });

  it("adds expires_at to a pre-TTL entries table", async () => {
    await expectPreTtlUpgrade(await fresh());
  });
});

/** An `entries` table from before TTL support is upgraded in place: old rows stay, TTL works. */
async function expectPreTtlUpgrade(db: Database): Promise<void> {
  await db.run(
    "CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL, PRIMARY KEY (group_name, entry_key))",
  );
  await db.run("INSERT INTO entries VALUES ('g', 'k', 'old')");
  const clock = new ManualClock(NOW);
  const s = await StateStore.open({ database: db, clock });
  expect(await s.get("g", "k")).toBe("old");
  await s.setWithTtl("g", "t", "v", 5);
  clock.advance(5);
  expect(await s.exists("g", "t")).toBe(false);
  await s.close();
  await db.close();
}
