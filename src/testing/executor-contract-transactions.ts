import { ReadOnlyError, TransactionError } from "../errors.js";
import type { Executor } from "../sql/index.js";
import { assert, type ExecutorCase, rejection, rejectsWith, withItems } from "./executor-contract-helpers.js";

/** Commit, rollback, savepoints, misuse and read-only transactions. */
export const transactionCases: readonly ExecutorCase[] = [
  {
    name: "commits a transaction and returns its result",
    run: (open) =>
      withItems(open, async (db) => {
        const result = await db.transaction(async (tx) => {
          await tx.run("INSERT INTO items (id) VALUES ($1)", ["t1"]);
          assert.deepEqual(await tx.get("SELECT id FROM items WHERE id = $1", ["t1"]), { id: "t1" });
          return 42;
        });
        assert.equal(result, 42);
        assert.deepEqual(await db.get("SELECT id FROM items"), { id: "t1" });
      }),
  },
  {
    name: "rolls back and rethrows the callback's error unchanged",
    run: (open) =>
      withItems(open, async (db) => {
        const boom = new Error("boom");
        const err = await rejection(
          db.transaction(async (tx) => {
            await tx.run("INSERT INTO items (id) VALUES ($1)", ["gone"]);
            throw boom;
          }),
          "the transaction rejects",
        );
        assert.equal(err, boom);
        assert.deepEqual(await db.all("SELECT id FROM items"), []);
      }),
  },
  {
    name: "nests transactions as savepoints",
    run: (open) =>
      withItems(open, async (db) => {
        await db.transaction(async (tx) => {
          await tx.run("INSERT INTO items (id) VALUES ($1)", ["outer"]);
          const inner = await rejection(
            tx.transaction(async (t) => {
              await t.run("INSERT INTO items (id) VALUES ($1)", ["inner-failed"]);
              throw new Error("inner");
            }),
            "the inner transaction rejects",
          );
          assert.equal((inner as Error).message, "inner");
          await tx.transaction(async (t) => {
            await t.run("INSERT INTO items (id) VALUES ($1)", ["inner-ok"]);
          });
        });
        assert.deepEqual(await db.all("SELECT id FROM items ORDER BY id"), [{ id: "inner-ok" }, { id: "outer" }]);
        await rejection(
          db.transaction(async (tx) => {
            await tx.transaction(async (t) => {
              await t.run("INSERT INTO items (id) VALUES ($1)", ["doomed"]);
            });
            throw new Error("outer fails");
          }),
          "the outer transaction rejects",
        );
        assert.equal(await db.get("SELECT id FROM items WHERE id = $1", ["doomed"]), undefined);
      }),
  },
  {
    name: "refuses a tx used after its callback settled",
    run: (open) =>
      withItems(open, async (db) => {
        let leaked: Executor | undefined;
        await db.transaction(async (tx) => {
          leaked = tx;
        });
        assert.ok(leaked !== undefined);
        await rejectsWith(leaked.run("INSERT INTO items (id) VALUES ($1)", ["late"]), TransactionError);
        assert.deepEqual(await db.all("SELECT id FROM items"), []);
      }),
  },
  {
    name: "rejects writes in a read-only transaction and writes nothing",
    run: (open) =>
      withItems(open, async (db) => {
        await db.run("INSERT INTO items (id) VALUES ($1)", ["keep"]);
        await rejectsWith(
          db.transaction(
            async (tx) => {
              assert.deepEqual(await tx.get("SELECT id FROM items"), { id: "keep" });
              await tx.run("DELETE FROM items");
            },
            { readOnly: true },
          ),
          ReadOnlyError,
        );
        assert.deepEqual(await db.all("SELECT id FROM items"), [{ id: "keep" }]);
      }),
  },
  {
    name: "takes the dialect's transaction lock inside a write transaction",
    run: (open) =>
      withItems(open, async (db) => {
        await db.transaction(async (tx) => {
          const lock = tx.dialect.transactionLock({ name: "executor-contract" });
          assert.equal(lock !== undefined, tx.dialect.advisoryLocks, "a lock statement exactly where advisoryLocks");
          if (lock !== undefined) await tx.run(lock.sql, lock.params);
          await tx.run("INSERT INTO items (id) VALUES ($1)", ["locked"]);
        });
        assert.deepEqual(await db.all("SELECT id FROM items"), [{ id: "locked" }]);
      }),
  },
];
