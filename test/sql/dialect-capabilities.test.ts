import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  columnNames,
  type Database,
  openPostgres,
  openSqlite,
  postgresDialect,
  sqliteDialect,
  type TransactionLockKey,
  tableExists,
  takeTransactionLock,
} from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";

const srcDir = fileURLToPath(new URL("../../src", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

async function introspection(db: Database): Promise<void> {
  await db.run("CREATE TABLE dialect_probe (id TEXT PRIMARY KEY, body TEXT)");
  expect(await tableExists(db, "dialect_probe")).toBe(true);
  expect(await tableExists(db, "dialect_absent")).toBe(false);
  expect((await columnNames(db, "dialect_probe")).sort()).toEqual(["body", "id"]);
  expect(await columnNames(db, "dialect_absent")).toEqual([]);
  await db.run(`CREATE TABLE dialect_ordered (k TEXT PRIMARY KEY, v TEXT)${db.dialect.keyOrderedTable}`);
  expect(await tableExists(db, "dialect_ordered")).toBe(true);
}

describe("dialect capabilities", () => {
  it("no store outside src/sql branches on the engine's name", () => {
    const offenders = sourceFiles(srcDir)
      .filter((f) => !relative(srcDir, f).startsWith("sql"))
      .filter((f) => /dialect\s*\.\s*name\b/.test(readFileSync(f, "utf8")))
      .map((f) => relative(srcDir, f));
    expect(offenders).toEqual([]);
  });

  it("SQLite needs no transaction lock: its writer lock already serialises writers", () => {
    expect(sqliteDialect.advisoryLocks).toBe(false);
    expect(sqliteDialect.concurrentWriters).toBe(false);
    for (const key of [1, { name: "a" }, { space: 2, name: "b" }] satisfies TransactionLockKey[]) {
      expect(sqliteDialect.transactionLock(key)).toBeUndefined();
    }
    expect(postgresDialect.advisoryLocks).toBe(true);
    expect(postgresDialect.concurrentWriters).toBe(true);
  });

  describe("sqlite", () => {
    let db: Database | undefined;
    afterEach(async () => {
      await db?.close();
    });

    it("finds tables and columns", async () => {
      db = await openSqlite(":memory:");
      await introspection(db);
    });

    it("takeTransactionLock runs nothing and the transaction proceeds", async () => {
      db = await openSqlite(":memory:");
      const value = await db.transaction(async (tx) => {
        await takeTransactionLock(tx, { name: "k" });
        return tx.get<{ one: number }>("SELECT 1 AS one");
      });
      expect(value).toEqual({ one: 1 });
    });
  });

  describe.runIf(hasPostgres)("postgres", () => {
    const fresh = useFreshPostgresDatabase();
    let db: Database | undefined;
    afterEach(async () => {
      await db?.close();
    });

    it("finds tables and columns in the current schema", async () => {
      db = await openPostgres(fresh.url, { schema: "dialect_caps" });
      await introspection(db);
    });

    it.each<[string, TransactionLockKey, TransactionLockKey]>([
      ["a 64-bit key", 9_007_199_254_740_991, 9_007_199_254_740_990],
      ["a name", { name: "orders" }, { name: "invoices" }],
      ["a name in a space", { space: 7, name: "ada" }, { space: 8, name: "ada" }],
    ])("takeTransactionLock with %s blocks the same key until commit and not other keys", async (_, key, other) => {
      const open = await openPostgres(fresh.url, { max: 4 });
      db = open;
      const events: string[] = [];
      let releaseA: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        releaseA = resolve;
      });
      let aLocked: () => void = () => {};
      const locked = new Promise<void>((resolve) => {
        aLocked = resolve;
      });
      const a = open.transaction(async (tx) => {
        await takeTransactionLock(tx, key);
        events.push("a locked");
        aLocked();
        await holding;
        events.push("a commits");
      });
      await locked;
      await open.transaction(async (tx) => {
        await takeTransactionLock(tx, other);
        events.push("other key locked");
      });
      const b = open.transaction(async (tx) => {
        await takeTransactionLock(tx, key);
        events.push("b locked");
      });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const row = await open.get<{ n: string }>(
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        );
        if (Number(row?.n) === 1) break;
        if (Date.now() > deadline) throw new Error("the second transaction never waited for the lock");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(events).toEqual(["a locked", "other key locked"]);
      releaseA();
      await Promise.all([a, b]);
      expect(events).toEqual(["a locked", "other key locked", "a commits", "b locked"]);
    });
  });
});
