import { describe, expect, it } from "vitest";
import {
  ClosedError,
  isStoreError,
  MigrationOutOfOrderError,
  ReadOnlyError,
  TransactionError,
  UniqueViolationError,
} from "../../src/errors.js";
import type { Database, Executor } from "../../src/sql/executor.js";
import { MigrationSet } from "../../src/sql/migration-set.js";

/** Behaviour every {@link Database} must share, registered once per engine. */
export function executorContract(name: string, open: () => Promise<Database>): void {
  describe(`${name}: executor contract`, () => {
    async function withTable(fn: (db: Database) => Promise<void>): Promise<void> {
      const db = await open();
      try {
        await db.run(
          `CREATE TABLE items (id TEXT PRIMARY KEY, n ${db.dialect.bigintType}, body ${db.dialect.blobType})`,
        );
        await fn(db);
      } finally {
        await db.close();
      }
    }

    it("runs statements and returns row shapes", () =>
      withTable(async (db) => {
        expect(await db.run("INSERT INTO items (id, n) VALUES ($1, $2), ($3, $4)", ["a", 1, "b", 2])).toEqual({
          changes: 2,
        });
        expect(await db.get("SELECT id, n FROM items WHERE id = $1", ["b"])).toEqual({ id: "b", n: 2 });
        expect(await db.get("SELECT id FROM items WHERE id = $1", ["zz"])).toBeUndefined();
        expect(await db.all("SELECT id FROM items ORDER BY id")).toEqual([{ id: "a" }, { id: "b" }]);
        expect(await db.run("DELETE FROM items WHERE id = $1", ["nope"])).toEqual({ changes: 0 });
      }));

    it("round-trips blobs, 64-bit integers and reused placeholders", () =>
      withTable(async (db) => {
        const bytes = new Uint8Array([0, 1, 2, 255]);
        await db.run("INSERT INTO items (id, n, body) VALUES ($1, $2, $3)", ["x", 2 ** 40 + 7, bytes]);
        const row = await db.get<{ n: number; body: Uint8Array }>(
          "SELECT n, body FROM items WHERE id = $1 AND id = $1",
          ["x"],
        );
        expect(row?.n).toBe(2 ** 40 + 7);
        expect([...(row?.body ?? [])]).toEqual([0, 1, 2, 255]);
        const reversed = await db.get<{ a: string; b: number }>(
          "SELECT CAST($2 AS TEXT) AS a, CAST($1 AS INTEGER) AS b",
          [5, "five"],
        );
        expect(reversed).toEqual({ a: "five", b: 5 });
      }));

    it("commits a transaction and returns its result", () =>
      withTable(async (db) => {
        const result = await db.transaction(async (tx) => {
          await tx.run("INSERT INTO items (id) VALUES ($1)", ["t1"]);
          expect(await tx.get("SELECT id FROM items WHERE id = $1", ["t1"])).toEqual({ id: "t1" });
          return 42;
        });
        expect(result).toBe(42);
        expect(await db.get("SELECT id FROM items")).toEqual({ id: "t1" });
      }));

    it("rolls back and rethrows the callback's error unchanged", () =>
      withTable(async (db) => {
        const boom = new Error("boom");
        await expect(
          db.transaction(async (tx) => {
            await tx.run("INSERT INTO items (id) VALUES ($1)", ["gone"]);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await db.all("SELECT id FROM items")).toEqual([]);
      }));

    it("nests transactions as savepoints", () =>
      withTable(async (db) => {
        await db.transaction(async (tx) => {
          await tx.run("INSERT INTO items (id) VALUES ($1)", ["outer"]);
          await expect(
            tx.transaction(async (inner) => {
              await inner.run("INSERT INTO items (id) VALUES ($1)", ["inner-failed"]);
              throw new Error("inner");
            }),
          ).rejects.toThrow("inner");
          await tx.transaction(async (inner) => {
            await inner.run("INSERT INTO items (id) VALUES ($1)", ["inner-ok"]);
          });
        });
        expect(await db.all("SELECT id FROM items ORDER BY id")).toEqual([{ id: "inner-ok" }, { id: "outer" }]);
        await expect(
          db.transaction(async (tx) => {
            await tx.transaction(async (inner) => {
              await inner.run("INSERT INTO items (id) VALUES ($1)", ["doomed"]);
            });
            throw new Error("outer fails");
          }),
        ).rejects.toThrow("outer fails");
        expect(await db.get("SELECT id FROM items WHERE id = $1", ["doomed"])).toBeUndefined();
      }));

    it("refuses a tx used after its callback settled", () =>
      withTable(async (db) => {
        let leaked: Executor | undefined;
        await db.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(leaked?.run("INSERT INTO items (id) VALUES ($1)", ["late"])).rejects.toBeInstanceOf(
          TransactionError,
        );
        expect(await db.all("SELECT id FROM items")).toEqual([]);
      }));

    it("rejects writes in a read-only transaction and writes nothing", () =>
      withTable(async (db) => {
        await db.run("INSERT INTO items (id) VALUES ($1)", ["keep"]);
        await expect(
          db.transaction(
            async (tx) => {
              expect(await tx.get("SELECT id FROM items")).toEqual({ id: "keep" });
              await tx.run("DELETE FROM items");
            },
            { readOnly: true },
          ),
        ).rejects.toBeInstanceOf(ReadOnlyError);
        expect(await db.all("SELECT id FROM items")).toEqual([{ id: "keep" }]);
      }));

    it("maps unique violations to a typed error with the driver error as cause", () =>
      withTable(async (db) => {
        await db.run("INSERT INTO items (id) VALUES ($1)", ["dup"]);
        const err = await db.run("INSERT INTO items (id) VALUES ($1)", ["dup"]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UniqueViolationError);
        expect(isStoreError(err, "UNIQUE_VIOLATION")).toBe(true);
        expect((err as UniqueViolationError).cause).toBeInstanceOf(Error);
      }));

    it("streams rows with iterate and releases the cursor on early exit", () =>
      withTable(async (db) => {
        await db.transaction(async (tx) => {
          for (let i = 0; i < 600; i++) await tx.run("INSERT INTO items (id, n) VALUES ($1, $2)", [`k${1000 + i}`, i]);
        });
        let seen = 0;
        for await (const row of db.iterate<{ n: number }>("SELECT n FROM items ORDER BY id", [], { batchSize: 100 })) {
          expect(row.n).toBe(seen);
          seen++;
        }
        expect(seen).toBe(600);
        const firstTen: number[] = [];
        for await (const row of db.iterate<{ n: number }>("SELECT n FROM items WHERE n >= $1 ORDER BY n", [100])) {
          firstTen.push(row.n);
          if (firstTen.length === 10) break;
        }
        expect(firstTen).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
        // The database is still fully usable after the early exit.
        expect(await db.get("SELECT count(*) AS c FROM items")).toEqual({ c: 600 });
        const inTx = await db.transaction(async (tx) => {
          const ids: string[] = [];
          for await (const r of tx.iterate<{ id: string }>("SELECT id FROM items ORDER BY id LIMIT 3")) ids.push(r.id);
          return ids;
        });
        expect(inTx).toEqual(["k1000", "k1001", "k1002"]);
      }));

    it("closes idempotently and rejects calls afterwards", async () => {
      const db = await open();
      await db.close();
      await db.close();
      expect(db.closed).toBe(true);
      await expect(db.get("SELECT 1 AS one")).rejects.toBeInstanceOf(ClosedError);
      await expect(db.run("SELECT 1")).rejects.toBeInstanceOf(ClosedError);
      await expect(db.transaction(async () => 1)).rejects.toBeInstanceOf(ClosedError);
    });

    describe("migrations", () => {
      const create = (table: string) => async (tx: Executor) => {
        await tx.run(`CREATE TABLE ${table} (id INTEGER)`);
      };

      it("applies pending migrations once and records them", async () => {
        const db = await open();
        try {
          const set = new MigrationSet("contract")
            .add({ id: "c/1", up: create("m1") })
            .add({ id: "c/2", up: create("m2") });
          expect(await db.migrate(set)).toEqual({ applied: ["c/1", "c/2"], ahead: [] });
          expect(await db.migrate(set)).toEqual({ applied: [], ahead: [] });
          set.add({ id: "c/3", up: create("m3") });
          expect(await db.migrate(set)).toEqual({ applied: ["c/3"], ahead: [] });
          await db.run("INSERT INTO m3 (id) VALUES (1)");
          // A set with another name has its own ordinals.
          expect(await db.migrate(new MigrationSet("other").add({ id: "o/1", up: create("o1") }))).toEqual({
            applied: ["o/1"],
            ahead: [],
          });
        } finally {
          await db.close();
        }
      });

      it("leaves a clean applied prefix when a migration fails", async () => {
        const db = await open();
        try {
          const boom = new Error("migration failed");
          const set = new MigrationSet("prefix")
            .add({ id: "p/1", up: create("p1") })
            .add({
              id: "p/2",
              up: async (tx) => {
                await tx.run("CREATE TABLE p2 (id INTEGER)");
                throw boom;
              },
            })
            .add({ id: "p/3", up: create("p3") });
          await expect(db.migrate(set)).rejects.toBe(boom);
          const rows = await db.all<{ id: string }>("SELECT id FROM storeroom_migrations WHERE set_name = $1", [
            "prefix",
          ]);
          expect(rows.map((r) => r.id)).toEqual(["p/1"]);
          await expect(db.run("INSERT INTO p2 (id) VALUES (1)")).rejects.toThrow();
        } finally {
          await db.close();
        }
      });

      it("detects reordered and removed migrations, and accepts a set the database is ahead of", async () => {
        const db = await open();
        try {
          const a = { id: "r/a", up: create("ra") };
          const b = { id: "r/b", up: create("rb") };
          const c = { id: "r/c", up: create("rc") };
          await db.migrate(new MigrationSet("reorder").add(a).add(b));
          await expect(db.migrate(new MigrationSet("reorder").add(b).add(a))).rejects.toBeInstanceOf(
            MigrationOutOfOrderError,
          );
          await expect(db.migrate(new MigrationSet("reorder").add(b).add(c))).rejects.toBeInstanceOf(
            MigrationOutOfOrderError,
          );
          expect(await db.migrate(new MigrationSet("reorder").add(a))).toEqual({ applied: [], ahead: ["r/b"] });
          expect(await db.migrate(new MigrationSet("reorder"))).toEqual({ applied: [], ahead: ["r/a", "r/b"] });
        } finally {
          await db.close();
        }
      });
    });
  });
}
