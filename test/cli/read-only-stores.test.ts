import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { registerJournal } from "../../src/cli/commands/journal.js";
import { registerState } from "../../src/cli/commands/state.js";
import { registerUploads } from "../../src/cli/commands/uploads.js";
import { ManualClock } from "../../src/clock.js";
import { FileObjectStore } from "../../src/objects/index.js";
import { MIGRATIONS_TABLE, MigrationSet, openSqlite } from "../../src/sql/index.js";
import { stateMigrations } from "../../src/state/index.js";
import { uploadsMigrations } from "../../src/uploads/index.js";
import { runCommand } from "../support/run-command.js";
import { useTempDir } from "../support/temp-dir.js";

/** The tables of a SQLite file, read through a read-only connection. */
async function tables(path: string): Promise<string[]> {
  const db = await openSqlite(path, { readonly: true });
  try {
    const rows = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    return rows.map((r) => r.name);
  } finally {
    await db.close();
  }
}

/** A SQLite file holding one table of some other program, nothing of storeroom's. */
async function otherDatabase(path: string): Promise<void> {
  const db = await openSqlite(path);
  await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
  await db.close();
}

const stateReads: [typeof registerState, string[]][] = [
  [registerState, ["state", "get", "g", "k"]],
  [registerState, ["state", "ls"]],
  [registerState, ["state", "ls", "g"]],
  [registerState, ["state", "render", "{{ .k }}", "g"]],
  [registerJournal, ["journal", "query"]],
];

describe("cli: commands that only read never create or upgrade a store's tables", () => {
  const dir = useTempDir("storeroom-cli-read-only-");

  it("state get, ls, render and journal query refuse an empty file by path (exit 2) and leave it empty", async () => {
    const empty = join(dir, "empty.db");
    writeFileSync(empty, "");
    for (const [register, args] of stateReads) {
      const run = await runCommand(register, [...args, "--db", empty, "--json"]);
      expect([run.code, JSON.parse(run.stdout).error], args.join(" ")).toEqual([
        2,
        { code: "NOT_FOUND", message: `no state store in ${empty} (no state tables; only state set creates them)` },
      ]);
      expect(run.stderr, args.join(" ")).toBe(
        `storeroom: no state store in ${empty} (no state tables; only state set creates them)\n`,
      );
      expect(readFileSync(empty).length, args.join(" ")).toBe(0);
    }
    const set = await runCommand(registerState, ["state", "set", "g", "k", "v", "--db", empty]);
    expect(set.code).toBe(0);
    const get = await runCommand(registerState, ["state", "get", "g", "k", "--db", empty]);
    expect([get.code, get.stdout]).toEqual([0, "v\n"]);
  });

  it("state get, ls, render and journal query refuse a SQLite file without state tables and add none", async () => {
    const other = join(dir, "other.db");
    await otherDatabase(other);
    const before = readFileSync(other);
    for (const [register, args] of stateReads) {
      const run = await runCommand(register, [...args, "--db", other]);
      expect([run.code, run.stderr], args.join(" ")).toEqual([
        2,
        `storeroom: no state store in ${other} (no state tables; only state set creates them)\n`,
      ]);
    }
    expect(readFileSync(other).equals(before)).toBe(true);
    expect(await tables(other)).toEqual(["notes"]);
  });

  it("a state store older than this version is not upgraded by a command that reads (READ_ONLY, exit 2)", async () => {
    const old = join(dir, "old.db");
    const [first] = stateMigrations.list();
    const db = await openSqlite(old);
    await db.migrate(new MigrationSet("state").add(first as NonNullable<typeof first>));
    await db.run("INSERT INTO entries (group_name, entry_key, entry_value) VALUES ('g', 'k', 'v')");
    await db.close();
    const before = await tables(old);
    for (const [register, args] of stateReads) {
      const run = await runCommand(register, [...args, "--db", old, "--json"]);
      expect(run.code, args.join(" ")).toBe(2);
      const error = JSON.parse(run.stdout).error;
      expect(error.code, args.join(" ")).toBe("READ_ONLY");
      expect(error.message, args.join(" ")).toBe(
        `the state store in ${old} predates this version (state/002-journal, state/003-versions, state/004-version-from-change-log not applied); commands that only read do not upgrade it, a command that writes (state set, state delete, compact) does`,
      );
    }
    expect(await tables(old)).toEqual(before);
    // A command that writes upgrades it in place, keeping the data.
    expect((await runCommand(registerState, ["state", "set", "g", "k2", "v2", "--db", old])).code).toBe(0);
    const get = await runCommand(registerState, ["state", "get", "g", "k", "--db", old]);
    expect([get.code, get.stdout]).toEqual([0, "v\n"]);
  });

  it("state delete refuses a file without state tables (exit 2) and creates none", async () => {
    const other = join(dir, "other-delete.db");
    await otherDatabase(other);
    const run = await runCommand(registerState, ["state", "delete", "g", "--db", other]);
    expect([run.code, run.stderr]).toEqual([
      2,
      `storeroom: no state store in ${other} (no state tables; only state set creates them)\n`,
    ]);
    expect(await tables(other)).toEqual(["notes"]);
  });

  it("uploads reconcile without --apply refuses a control database without uploads tables and adds none", async () => {
    const objects = join(dir, "objects");
    // An object old enough to be checked against the claims and the delete queue.
    const store = new FileObjectStore({ root: objects, clock: new ManualClock(Date.UTC(2020, 0, 1)) });
    await store.put("pub/old.txt", Buffer.from("old"));
    await store.close();
    const other = join(dir, "control-other.db");
    await otherDatabase(other);
    const args = ["uploads", "reconcile", "--references-query", "SELECT body AS key FROM notes", "--objects", objects];
    const run = await runCommand(registerUploads, [...args, "--db", other]);
    expect([run.code, run.stderr]).toEqual([
      2,
      `no uploads store in ${other} (no uploads tables; storeroom migrate, storeroom serve and the other uploads commands create them)`,
    ]);
    expect(await tables(other)).toEqual(["notes"]);
    // Once migrated, the dry run works and still writes nothing.
    const db = await openSqlite(other);
    await db.migrate(uploadsMigrations);
    await db.close();
    const migrated = await tables(other);
    const ok = await runCommand(registerUploads, [...args, "--db", other, "--json"]);
    expect([ok.code, JSON.parse(ok.stdout)]).toMatchObject([
      1,
      { dryRun: true, orphans: ["pub/old.txt"], quarantined: [] },
    ]);
    expect(await tables(other)).toEqual(migrated);
    expect(migrated).toContain(MIGRATIONS_TABLE);
  });
});
