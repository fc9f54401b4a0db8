import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ReadOnlyError, TransactionError } from "../../src/errors.js";
import { asSyncReader, type Executor, openPostgres, openSqlite, type SyncReader } from "../../src/sql/index.js";
import { useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir();
const postgres = useFreshPostgresDatabase();

async function seeded(path: string) {
  const db = await openSqlite(path);
  await db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  await db.run("INSERT INTO t VALUES (1, 'one')");
  return db;
}

describe("asSyncReader", () => {
  for (const where of [":memory:", "file"]) {
    it(`reads synchronously inside SQLite transactions (${where})`, async () => {
      const db = await seeded(where === "file" ? join(dir, "sync.db") : ":memory:");
      expect(asSyncReader(db)).toBeUndefined();
      const row = await db.transaction(async (tx) => {
        const reader = asSyncReader(tx) as SyncReader;
        expect(reader).toBeDefined();
        await tx.run("INSERT INTO t VALUES (2, 'two')");
        expect(reader.getNow("SELECT v FROM t WHERE id = $1", [2])).toEqual({ v: "two" });
        return reader.getNow("SELECT v FROM t WHERE id = $1", [9]);
      });
      expect(row).toBeUndefined();
      const inView = await db.transaction(
        async (tx) => (asSyncReader(tx) as SyncReader).getNow<{ v: string }>("SELECT v FROM t WHERE id = 1"),
        { readOnly: true },
      );
      expect(inView).toEqual({ v: "one" });
      await db.close();
    });
  }

  it("refuses a finished transaction, a write in a read-only one, and reads while a nested one is open", async () => {
    const db = await seeded(join(dir, "refuse.db"));
    let kept: Executor | undefined;
    await db.transaction(async (tx) => {
      kept = tx;
    });
    expect(() => (asSyncReader(kept as Executor) as SyncReader).getNow("SELECT 1")).toThrow(TransactionError);
    await db.transaction(
      async (tx) => {
        const reader = asSyncReader(tx) as SyncReader;
        expect(() => reader.getNow("INSERT INTO t VALUES (3, 'x') RETURNING id")).toThrow(ReadOnlyError);
      },
      { readOnly: true },
    );
    await db.transaction(async (tx) => {
      const reader = asSyncReader(tx) as SyncReader;
      let release = () => {};
      const started = new Promise<void>((began) => {
        void tx.transaction(() => {
          began();
          return new Promise<void>((resolve) => (release = resolve));
        });
      });
      expect(() => reader.getNow("SELECT 1")).toThrow(TransactionError);
      await started;
      expect(() => reader.getNow("SELECT 1")).toThrow(TransactionError);
      release();
      await tx.get("SELECT 1");
      expect(reader.getNow("SELECT 1 AS one")).toEqual({ one: 1 });
    });
    expect(await db.all("SELECT id FROM t ORDER BY id")).toEqual([{ id: 1 }]);
    await db.close();
  });

  it("is undefined on PostgreSQL, whose statements are asynchronous", async () => {
    const db = await openPostgres(postgres.url);
    await db.transaction(async (tx) => {
      expect(asSyncReader(tx)).toBeUndefined();
    });
    await db.close();
  });
});
