import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  BusyError,
  ConstraintError,
  CorruptDatabaseError,
  InvalidArgumentError,
  TransactionError,
} from "../../src/errors.js";
import { openSqlite as openOn, type SqliteOptions } from "../../src/sql/index.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const root = useTempDir();

for (const engine of availableSqliteEngines()) {
  const dir = join(root, engine.replace(":", "-"));
  mkdirSync(dir);
  const openSqlite = (path: string, options: SqliteOptions = {}) => openOn(path, { engine, ...options });

  describe(`openSqlite (${engine})`, () => {
    it("refuses a malformed option by name instead of replacing it (a misspelt synchronous stayed NORMAL)", async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ synchronous: "FULL" }, /^synchronous must be "normal" or "full", got FULL/],
        [{ synchronous: "fast" }, /^synchronous must be/],
        [{ busyTimeoutMs: -1 }, /^busyTimeoutMs must be a non-negative integer, got -1/],
        [{ busyTimeoutMs: "5" }, /^busyTimeoutMs must be a non-negative integer/],
        [{ statementCacheSize: 0 }, /^statementCacheSize must be a positive integer, got 0/],
        [{ walAutocheckpoint: 1.5 }, /^walAutocheckpoint must be a non-negative integer/],
        [{ readonly: 1 }, /^readonly must be a boolean/],
        [{ readConnection: "yes" }, /^readConnection must be a boolean/],
        [{ detectSelfDeadlock: "no" }, /^detectSelfDeadlock must be a boolean/],
        [{ clock: Date }, /^clock must be a Clock \(an object with now\(\)\)/],
        [{ clock: 0 }, /^clock must be a Clock/],
        [{ backgroundCheckpoint: true }, /^backgroundCheckpoint must be an object/],
        [{ backgroundCheckpoint: { intervalMs: 0.5 } }, /^backgroundCheckpoint\.intervalMs must be an integer/],
        [{ engine: "sqlite3" }, /^engine must be one of/],
      ];
      for (const [options, message] of cases) {
        const path = join(dir, "refused.db");
        const error = await openSqlite(path, options as SqliteOptions).catch((err: unknown) => err);
        expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(message);
        expect(existsSync(path)).toBe(false); // nothing was created
      }
      const badPath = await openOn(7 as unknown as string).catch((err: unknown) => err);
      expect(badPath).toBeInstanceOf(InvalidArgumentError);
      expect((badPath as Error).message).toMatch(/^path must be a file path or ":memory:", got 7/);
      const defaults = await openSqlite(join(dir, "defaults.db"), { busyTimeoutMs: undefined, synchronous: undefined });
      expect(await defaults.get("PRAGMA busy_timeout")).toEqual({ timeout: 5000 });
      await defaults.close();
    });

    it("opens in WAL with foreign keys on, synchronous NORMAL by default and FULL as an option", async () => {
      const db = await openSqlite(join(dir, "pragmas.db"), { readConnection: false });
      expect(await db.get("PRAGMA journal_mode")).toEqual({ journal_mode: "wal" });
      expect(await db.get("PRAGMA foreign_keys")).toEqual({ foreign_keys: 1 });
      expect(await db.get("PRAGMA synchronous")).toEqual({ synchronous: 1 });
      expect(await db.get("PRAGMA busy_timeout")).toEqual({ timeout: 5000 });
      await db.close();
      const full = await openSqlite(join(dir, "full.db"), {
        synchronous: "full",
        busyTimeoutMs: 1234,
        readConnection: false,
      });
      expect(await full.get("PRAGMA synchronous")).toEqual({ synchronous: 2 });
      expect(await full.get("PRAGMA busy_timeout")).toEqual({ timeout: 1234 });
      await full.close();
    });

    it("enforces foreign keys", async () => {
      const db = await openSqlite(":memory:");
      await db.run("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
      await db.run("CREATE TABLE child (id INTEGER, parent_id INTEGER REFERENCES parent(id))");
      await expect(db.run("INSERT INTO child VALUES (1, 99)")).rejects.toBeInstanceOf(ConstraintError);
      await db.close();
    });

    it("also binds plain ? placeholders and converts booleans and Uint8Array views", async () => {
      const db = await openSqlite(":memory:");
      await db.run("CREATE TABLE t (a INTEGER, b BLOB)");
      const backing = new Uint8Array([9, 8, 7, 6]);
      await db.run("INSERT INTO t VALUES (?, ?)", [true, backing.subarray(1, 3)]);
      const row = await db.get<{ a: number; b: Uint8Array }>("SELECT a, b FROM t");
      expect(row?.a).toBe(1);
      expect([...(row?.b ?? [])]).toEqual([8, 7]);
      await db.close();
    });

    it("with detectSelfDeadlock, refuses calls that would wait for their own transaction", async () => {
      const db = await openSqlite(join(dir, "reentrant.db"), { detectSelfDeadlock: true });
      await db.run("CREATE TABLE t (k TEXT)");
      await expect(
        db.transaction(async () => {
          await db.run("INSERT INTO t VALUES ('x')");
        }),
      ).rejects.toBeInstanceOf(TransactionError);
      await expect(
        db.transaction(async () => {
          await db.transaction(async () => undefined);
        }),
      ).rejects.toBeInstanceOf(TransactionError);
      await expect(
        db.transaction(async (tx) => {
          await tx.transaction(async () => {
            await tx.run("INSERT INTO t VALUES ('outer tx from inside the nested one')");
          });
        }),
      ).rejects.toBeInstanceOf(TransactionError);
      expect(await db.all("SELECT k FROM t")).toEqual([]);
      await db.close();
    });

    it("runs read-only transactions on a snapshot beside a write transaction that is holding the writer", async () => {
      const db = await openSqlite(join(dir, "snapshot-tx.db"));
      await db.run("CREATE TABLE t (k INTEGER)");
      await db.run("INSERT INTO t VALUES (1)");
      let release: () => void = () => {};
      const writing = db.transaction(async (tx) => {
        await tx.run("INSERT INTO t VALUES (2)");
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      });
      await new Promise((r) => setImmediate(r));
      // Would never settle if it queued behind the open write transaction.
      const seen = await db.transaction(
        async (tx) => {
          const first = await tx.all("SELECT k FROM t ORDER BY k");
          await new Promise((r) => setImmediate(r));
          const second = await tx.all("SELECT k FROM t ORDER BY k");
          return { first, second };
        },
        { readOnly: true },
      );
      expect(seen).toEqual({ first: [{ k: 1 }], second: [{ k: 1 }] });
      release();
      await writing;
      expect(await db.transaction((tx) => tx.all("SELECT k FROM t ORDER BY k"), { readOnly: true })).toEqual([
        { k: 1 },
        { k: 2 },
      ]);
      await db.close();
    });

    it("rethrows a callback that throws before returning a promise, and frees what it held", async () => {
      const db = await openSqlite(join(dir, "sync-throw.db"));
      await db.run("CREATE TABLE t (k TEXT)");
      const boom = new Error("thrown synchronously");
      const thrower = (() => {
        throw boom;
      }) as unknown as () => Promise<void>;
      for (const readOnly of [false, true]) {
        await expect(db.transaction(thrower, { readOnly })).rejects.toBe(boom);
      }
      await db.transaction((tx) => tx.run("INSERT INTO t VALUES ('after')"));
      expect(await db.transaction((tx) => tx.all("SELECT k FROM t"), { readOnly: true })).toEqual([{ k: "after" }]);
      await db.close();
      await expect(db.transaction(async () => undefined)).rejects.toThrow(/closed/);
    });

    it("reports another connection's write lock as BusyError after busy_timeout", async () => {
      const path = join(dir, "busy.db");
      const a = await openSqlite(path);
      const b = await openSqlite(path, { busyTimeoutMs: 50 });
      await a.run("CREATE TABLE t (k TEXT)");
      let release: () => void = () => {};
      const held = a.transaction(async (tx) => {
        await tx.run("INSERT INTO t VALUES ('a')");
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      });
      await new Promise((r) => setImmediate(r));
      const err = await b.run("INSERT INTO t VALUES ('b')").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BusyError);
      // A transaction whose BEGIN IMMEDIATE is refused must give the writer back.
      const ran: string[] = [];
      const refused = await b
        .transaction(async () => {
          ran.push("callback");
        })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BusyError);
      expect(ran).toEqual([]);
      release();
      await held;
      await b.transaction((tx) => tx.run("INSERT INTO t VALUES ('c')"));
      expect(await b.all("SELECT k FROM t ORDER BY k")).toEqual([{ k: "a" }, { k: "c" }]);
      await a.close();
      await b.close();
    });

    it("rejects a file that is not a SQLite database", async () => {
      const path = join(dir, "garbage.db");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(path, "this is not a database, just text that is long enough to fill a header");
      await expect(openSqlite(path)).rejects.toBeInstanceOf(CorruptDatabaseError);
    });

    it("snapshots a consistent copy while the database stays writable, and counts changes", async () => {
      const db = await openSqlite(join(dir, "snap.db"));
      await db.run("CREATE TABLE t (k INTEGER)");
      const before = db.totalChanges();
      await db.transaction(async (tx) => {
        for (let i = 0; i < 100; i++) await tx.run("INSERT INTO t VALUES ($1)", [i]);
      });
      expect(db.totalChanges() - before).toBe(100);
      const target = join(dir, "snap-copy.db");
      await db.snapshotTo(target);
      await db.run("INSERT INTO t VALUES (1000)");
      expect(existsSync(target)).toBe(true);
      const copy = await openSqlite(target);
      expect(await copy.get("SELECT count(*) AS c FROM t")).toEqual({ c: 100 });
      await copy.close();
      await db.close();
    });

    it("opens read-only when asked", async () => {
      const path = join(dir, "ro.db");
      const rw = await openSqlite(path);
      await rw.run("CREATE TABLE t (k TEXT)");
      await rw.close();
      const ro = await openSqlite(path, { readonly: true });
      await expect(ro.run("INSERT INTO t VALUES ('x')")).rejects.toThrow();
      expect(await ro.all("SELECT k FROM t")).toEqual([]);
      await ro.close();
    });

    it("lets read-only transactions in flight finish before close() closes their connections", async () => {
      const db = await openSqlite(join(dir, "close-readers.db"));
      await db.run("CREATE TABLE t (k TEXT)");
      await db.run("INSERT INTO t VALUES ('x')");
      const gates: (() => void)[] = [];
      const readers = [1, 2, 3].map(() =>
        db.transaction(
          async (tx) => {
            await new Promise<void>((resolve) => gates.push(resolve));
            return tx.all("SELECT k FROM t");
          },
          { readOnly: true },
        ),
      );
      await new Promise((r) => setImmediate(r));
      let closed = false;
      const closing = db.close().then(() => {
        closed = true;
      });
      // The readers finish one by one on their connections while close() waits: not closed while one is open.
      for (const [i, reader] of readers.entries()) {
        expect(closed).toBe(false);
        gates[i]?.();
        expect(await reader).toEqual([{ k: "x" }]);
      }
      await closing;
      expect(closed).toBe(true);
      await expect(db.transaction(async () => 1, { readOnly: true })).rejects.toThrow(/closed/);
    });

    it("runs queued work admitted before close, then refuses new work", async () => {
      const db = await openSqlite(join(dir, "close.db"));
      await db.run("CREATE TABLE t (k TEXT)");
      let release: () => void = () => {};
      const tx = db.transaction(async (t) => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        await t.run("INSERT INTO t VALUES ('in-tx')");
      });
      const queued = db.run("INSERT INTO t VALUES ('queued')");
      await new Promise((r) => setImmediate(r));
      const closing = db.close();
      release();
      await tx;
      await queued;
      await closing;
      const check = await openSqlite(join(dir, "close.db"));
      expect((await check.all<{ k: string }>("SELECT k FROM t ORDER BY k")).map((r) => r.k)).toEqual([
        "in-tx",
        "queued",
      ]);
      await check.close();
    });
  });
}
