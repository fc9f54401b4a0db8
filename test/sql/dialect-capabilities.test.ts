import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ReadOnlyError } from "../../src/errors.js";
import {
  columnNames,
  type Database,
  likePrefix,
  openPostgres,
  openSqlite,
  postgresDialect,
  sqliteDialect,
  type TransactionLockKey,
  tableExists,
  takeTransactionLock,
} from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const tempDir = useTempDir();
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

/** `likePrefix` matches its prefix literally and case-sensitively, the same on both engines. */
async function literalPrefixes(db: Database): Promise<void> {
  await db.run("CREATE TABLE like_probe (k TEXT PRIMARY KEY)");
  for (const k of ["a%b", "a%bc", "a%B", "axb", "a_b", "aXb", "a\\b", "a\\bz", "A%b"]) {
    await db.run("INSERT INTO like_probe (k) VALUES ($1)", [k]);
  }
  const matching = async (prefix: string) =>
    (await db.all<{ k: string }>("SELECT k FROM like_probe WHERE k LIKE $1 ESCAPE '\\'", [likePrefix(prefix)]))
      .map((r) => r.k)
      .sort();
  expect(await matching("a%")).toEqual(["a%B", "a%b", "a%bc"]);
  expect(await matching("a%b")).toEqual(["a%b", "a%bc"]);
  expect(await matching("a_")).toEqual(["a_b"]);
  expect(await matching("a\\")).toEqual(["a\\b", "a\\bz"]);
  expect(await matching("A")).toEqual(["A%b"]);
  expect((await matching("")).length).toBe(9);
}

/**
 * While a nested transaction is open, a statement on the outer `tx` from another async branch
 * waits for it: it must not land inside the savepoint and vanish with its rollback.
 */
async function outerStatementsWaitForNested(db: Database): Promise<void> {
  await db.run("CREATE TABLE nest_probe (k TEXT PRIMARY KEY)");
  const order: string[] = [];
  await db.transaction(async (tx) => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const nested = tx
      .transaction(async (t) => {
        await t.run("INSERT INTO nest_probe (k) VALUES ($1)", ["nested"]);
        entered();
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        order.push("nested rolls back");
        throw new Error("nested fails");
      })
      .catch((err: unknown) => err);
    await inside;
    const outer = tx.run("INSERT INTO nest_probe (k) VALUES ($1)", ["outer branch"]).then(() => {
      order.push("outer statement");
    });
    // Give a statement that does not wait every chance to finish: a round trip outside the transaction.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    await db.get("SELECT 1 AS one");
    expect(order).toEqual([]);
    release();
    expect(((await nested) as Error).message).toBe("nested fails");
    await outer;
  });
  expect(order).toEqual(["nested rolls back", "outer statement"]);
  expect(await db.all("SELECT k FROM nest_probe")).toEqual([{ k: "outer branch" }]);
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

    it("likePrefix matches literally and case-sensitively (case_sensitive_like is on)", async () => {
      db = await openSqlite(":memory:");
      await literalPrefixes(db);
    });

    it("makes statements on the outer tx wait while a nested transaction is open", async () => {
      db = await openSqlite(join(tempDir, "nested.db"));
      await outerStatementsWaitForNested(db);
    });

    it("enforces a nested read-only transaction inside a write transaction", async () => {
      db = await openSqlite(join(tempDir, "nested-read-only.db"));
      await db.run("CREATE TABLE ro_probe (k TEXT PRIMARY KEY)");
      const open = db;
      await open.transaction(async (tx) => {
        await tx.run("INSERT INTO ro_probe (k) VALUES ($1)", ["written"]);
        await expect(
          tx.transaction((t) => t.run("INSERT INTO ro_probe (k) VALUES ($1)", ["refused"]), { readOnly: true }),
        ).rejects.toBeInstanceOf(ReadOnlyError);
        expect(await tx.transaction((t) => t.all("SELECT k FROM ro_probe"), { readOnly: true })).toEqual([
          { k: "written" },
        ]);
        await tx.run("INSERT INTO ro_probe (k) VALUES ($1)", ["after"]);
      });
      expect(await open.all("SELECT k FROM ro_probe ORDER BY k")).toEqual([{ k: "after" }, { k: "written" }]);
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

    it("likePrefix matches literally and case-sensitively", async () => {
      db = await openPostgres(fresh.url, { schema: "dialect_like" });
      await literalPrefixes(db);
    });

    it("makes statements on the outer tx wait while a nested transaction is open", async () => {
      db = await openPostgres(fresh.url, { schema: "dialect_nested" });
      await outerStatementsWaitForNested(db);
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
          // This database's waiters only: other test files wait for advisory locks on the same server.
          "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
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
