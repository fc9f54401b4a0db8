import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSqlite as openOn, type SqliteDatabase, type SqliteOptions } from "../../src/sql/index.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const root = useTempDir();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The SQLite concurrency contract, with interleavings forced by awaits: 200 concurrent callers
 * mix transactions that await between statements (some of which fail) with plain reads and
 * writes. Checked: no outside statement runs inside a transaction (its write survives the
 * transaction's rollback), a failed transaction rolls back only its own writes, and a read
 * outside a transaction never sees uncommitted data.
 */
async function contract(db: SqliteDatabase): Promise<void> {
  await db.run("CREATE TABLE log (id TEXT PRIMARY KEY, kind TEXT NOT NULL)");
  const uncommittedSeen: string[] = [];
  const callers = Array.from({ length: 200 }, (_, i) => async () => {
    const kind = i % 4;
    if (kind === 0 || kind === 1) {
      const fail = kind === 1;
      await db
        .transaction(async (tx) => {
          await tx.run("INSERT INTO log (id, kind) VALUES ($1, $2)", [`tx-${i}-a`, fail ? "rolled-back" : "committed"]);
          await tick();
          await tx.run("INSERT INTO log (id, kind) VALUES ($1, $2)", [`tx-${i}-b`, fail ? "rolled-back" : "committed"]);
          await tick();
          if (fail) throw new Error(`caller ${i} fails`);
        })
        .catch((err: Error) => {
          if (err.message !== `caller ${i} fails`) throw err;
        });
    } else if (kind === 2) {
      await tick();
      await db.run("INSERT INTO log (id, kind) VALUES ($1, $2)", [`plain-${i}`, "outside"]);
    } else {
      await tick();
      const rows = await db.all<{ id: string }>("SELECT id FROM log WHERE kind = $1", ["rolled-back"]);
      uncommittedSeen.push(...rows.map((r) => r.id));
      const partial = await db.all<{ id: string }>(
        "SELECT id FROM log WHERE kind = 'committed' AND id LIKE 'tx-%-a' AND replace(id, '-a', '-b') NOT IN (SELECT id FROM log)",
      );
      uncommittedSeen.push(...partial.map((r) => r.id));
    }
  });
  await Promise.all(callers.map((c) => c()));
  const rows = await db.all<{ id: string; kind: string }>("SELECT id, kind FROM log");
  const kinds = new Map(rows.map((r) => [r.id, r.kind]));
  expect(uncommittedSeen).toEqual([]);
  expect(rows.filter((r) => r.kind === "rolled-back")).toEqual([]);
  for (let i = 0; i < 200; i++) {
    if (i % 4 === 0) {
      expect(kinds.get(`tx-${i}-a`)).toBe("committed");
      expect(kinds.get(`tx-${i}-b`)).toBe("committed");
    }
    if (i % 4 === 2) expect(kinds.get(`plain-${i}`)).toBe("outside");
  }
  expect(rows.length).toBe(50 * 2 + 50);
}

for (const engine of availableSqliteEngines()) {
  const dir = join(root, engine.replace(":", "-"));
  mkdirSync(dir);
  const openSqlite = (path: string, options: SqliteOptions = {}) => openOn(path, { engine, ...options });

  describe(`sqlite concurrency contract (${engine})`, () => {
    it("holds on a file database (writer + read connection)", async () => {
      const db = await openSqlite(join(dir, "concurrency.db"));
      await contract(db);
      await db.close();
    });

    it("holds on a single connection (:memory:)", async () => {
      const db = await openSqlite(":memory:");
      await contract(db);
      await db.close();
    });

    it("holds without a read connection", async () => {
      const db = await openSqlite(join(dir, "concurrency-single.db"), { readConnection: false });
      await contract(db);
      await db.close();
    });

    it("never shows a read outside the transaction the transaction's pending write", async () => {
      for (const path of [join(dir, "visibility.db"), ":memory:"]) {
        const db = await openSqlite(path);
        await db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)");
        await db.run("INSERT INTO t VALUES ('x', 1)");
        let signalWritten: () => void = () => {};
        const written = new Promise<void>((resolve) => {
          signalWritten = resolve;
        });
        // Started outside the transaction's async context, like another request would be.
        const outside = (async () => {
          await written;
          const row = await db.get<{ v: number }>("SELECT v FROM t WHERE k = 'x'");
          return row?.v;
        })();
        await db.transaction(async (tx) => {
          await tx.run("UPDATE t SET v = 2 WHERE k = 'x'");
          signalWritten();
          await tick();
          await tick();
          expect(await tx.get("SELECT v FROM t WHERE k = 'x'")).toEqual({ v: 2 });
        });
        // The file database answers from its read snapshot (1); the single connection waits for the commit (2).
        expect(await outside).toBe(path === ":memory:" ? 2 : 1);
        expect(await db.get("SELECT v FROM t WHERE k = 'x'")).toEqual({ v: 2 });
        await db.close();
      }
    });
  });
}
