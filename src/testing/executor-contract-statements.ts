import { ClosedError, isStoreError, UniqueViolationError } from "../errors.js";
import { assert, type ExecutorCase, rejectsWith, withDatabase, withItems } from "./executor-contract-helpers.js";

/** Statements, value round trips, errors, streaming and close. */
export const statementCases: readonly ExecutorCase[] = [
  {
    name: "runs statements and returns row shapes",
    run: (open) =>
      withItems(open, async (db) => {
        assert.deepEqual(await db.run("INSERT INTO items (id, n) VALUES ($1, $2), ($3, $4)", ["a", 1, "b", 2]), {
          changes: 2,
        });
        assert.deepEqual(await db.get("SELECT id, n FROM items WHERE id = $1", ["b"]), { id: "b", n: 2 });
        assert.equal(await db.get("SELECT id FROM items WHERE id = $1", ["zz"]), undefined);
        assert.deepEqual(await db.all("SELECT id FROM items ORDER BY id"), [{ id: "a" }, { id: "b" }]);
        assert.deepEqual(await db.run("DELETE FROM items WHERE id = $1", ["nope"]), { changes: 0 });
      }),
  },
  {
    name: "round-trips blobs, 64-bit integers and reused placeholders",
    run: (open) =>
      withItems(open, async (db) => {
        await db.run("INSERT INTO items (id, n, body) VALUES ($1, $2, $3)", [
          "x",
          2 ** 40 + 7,
          new Uint8Array([0, 1, 2, 255]),
        ]);
        const row = await db.get<{ n: number; body: Uint8Array }>(
          "SELECT n, body FROM items WHERE id = $1 AND id = $1",
          ["x"],
        );
        assert.equal(row?.n, 2 ** 40 + 7);
        assert.deepEqual([...(row?.body ?? [])], [0, 1, 2, 255]);
        const reversed = await db.get("SELECT CAST($2 AS TEXT) AS a, CAST($1 AS INTEGER) AS b", [5, "five"]);
        assert.deepEqual(reversed, { a: "five", b: 5 });
      }),
  },
  {
    name: "maps unique violations to a typed error with the driver error as cause",
    run: (open) =>
      withItems(open, async (db) => {
        await db.run("INSERT INTO items (id) VALUES ($1)", ["dup"]);
        const err = await rejectsWith(db.run("INSERT INTO items (id) VALUES ($1)", ["dup"]), UniqueViolationError);
        assert.ok(isStoreError(err, "UNIQUE_VIOLATION"));
        assert.ok(err.cause instanceof Error, "the driver error is the cause");
      }),
  },
  {
    name: "RETURNING and ON CONFLICT work where the dialect says so",
    run: (open) =>
      withItems(open, async (db) => {
        assert.ok(db.dialect.returning && db.dialect.upsert, "stores rely on RETURNING and upserts");
        const upsert =
          "INSERT INTO items (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = items.n + excluded.n RETURNING n";
        assert.deepEqual(await db.get(upsert, ["c", 1]), { n: 1 });
        assert.deepEqual(await db.get(upsert, ["c", 2]), { n: 3 });
        assert.deepEqual(
          await db.run("INSERT INTO items (id, n) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", ["c", 9]),
          {
            changes: 0,
          },
        );
      }),
  },
  {
    name: "streams rows with iterate and releases the cursor on early exit",
    run: (open) =>
      withItems(open, async (db) => {
        await db.transaction(async (tx) => {
          for (let i = 0; i < 600; i++) await tx.run("INSERT INTO items (id, n) VALUES ($1, $2)", [`k${1000 + i}`, i]);
        });
        let seen = 0;
        for await (const row of db.iterate<{ n: number }>("SELECT n FROM items ORDER BY id", [], { batchSize: 100 })) {
          assert.equal(row.n, seen);
          seen++;
        }
        assert.equal(seen, 600);
        const firstTen: number[] = [];
        for await (const row of db.iterate<{ n: number }>("SELECT n FROM items WHERE n >= $1 ORDER BY n", [100])) {
          firstTen.push(row.n);
          if (firstTen.length === 10) break;
        }
        assert.deepEqual(firstTen, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
        // The database is still fully usable after the early exit.
        assert.equal(Number((await db.get<{ c: number | string }>("SELECT count(*) AS c FROM items"))?.c), 600);
        const inTx = await db.transaction(async (tx) => {
          const ids: string[] = [];
          for await (const r of tx.iterate<{ id: string }>("SELECT id FROM items ORDER BY id LIMIT 3")) ids.push(r.id);
          return ids;
        });
        assert.deepEqual(inTx, ["k1000", "k1001", "k1002"]);
      }),
  },
  {
    name: "finds its own tables and columns through the dialect",
    run: (open) =>
      withItems(open, async (db) => {
        const exists = db.dialect.tableExists("items");
        assert.notEqual(await db.get(exists.sql, exists.params), undefined);
        const absent = db.dialect.tableExists("no_such_table");
        assert.equal(await db.get(absent.sql, absent.params), undefined);
        const columns = db.dialect.columnNames("items");
        const names = (await db.all<{ name: string }>(columns.sql, columns.params)).map((c) => c.name).sort();
        assert.deepEqual(names, ["body", "id", "n"]);
      }),
  },
  {
    name: "closes idempotently and rejects calls afterwards",
    run: (open) =>
      withDatabase(open, async (db) => {
        await db.close();
        await db.close();
        assert.equal(db.closed, true);
        await rejectsWith(db.get("SELECT 1 AS one"), ClosedError);
        await rejectsWith(db.run("SELECT 1"), ClosedError);
        await rejectsWith(
          db.transaction(async () => 1),
          ClosedError,
        );
      }),
  },
];
