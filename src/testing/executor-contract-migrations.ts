import { MigrationOutOfOrderError } from "../errors.js";
import { type Executor, MigrationSet } from "../sql/index.js";
import { assert, type ExecutorCase, rejection, rejectsWith, withDatabase } from "./executor-contract-helpers.js";

const create = (table: string) => async (tx: Executor) => {
  await tx.run(`CREATE TABLE ${table} (id INTEGER)`);
};

/** `Database.migrate`: applying, failure prefix, reorder and removal detection. */
export const migrationCases: readonly ExecutorCase[] = [
  {
    name: "migrations: applies pending migrations once and records them",
    run: (open) =>
      withDatabase(open, async (db) => {
        const set = new MigrationSet("contract")
          .add({ id: "c/1", up: create("m1") })
          .add({ id: "c/2", up: create("m2") });
        assert.deepEqual(await db.migrate(set), { applied: ["c/1", "c/2"], ahead: [] });
        assert.deepEqual(await db.migrate(set), { applied: [], ahead: [] });
        set.add({ id: "c/3", up: create("m3") });
        assert.deepEqual(await db.migrate(set), { applied: ["c/3"], ahead: [] });
        await db.run("INSERT INTO m3 (id) VALUES (1)");
        // A set with another name has its own ordinals.
        assert.deepEqual(await db.migrate(new MigrationSet("other").add({ id: "o/1", up: create("o1") })), {
          applied: ["o/1"],
          ahead: [],
        });
      }),
  },
  {
    name: "migrations: leaves a clean applied prefix when a migration fails",
    run: (open) =>
      withDatabase(open, async (db) => {
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
        assert.equal(await rejection(db.migrate(set), "the failing migration rejects"), boom);
        const rows = await db.all<{ id: string }>("SELECT id FROM storeroom_migrations WHERE set_name = $1", [
          "prefix",
        ]);
        assert.deepEqual(
          rows.map((r) => r.id),
          ["p/1"],
        );
        await rejection(db.run("INSERT INTO p2 (id) VALUES (1)"), "the failed migration's table was rolled back");
      }),
  },
  {
    name: "migrations: detects reordered and removed migrations, and accepts a set the database is ahead of",
    run: (open) =>
      withDatabase(open, async (db) => {
        const a = { id: "r/a", up: create("ra") };
        const b = { id: "r/b", up: create("rb") };
        const c = { id: "r/c", up: create("rc") };
        await db.migrate(new MigrationSet("reorder").add(a).add(b));
        await rejectsWith(db.migrate(new MigrationSet("reorder").add(b).add(a)), MigrationOutOfOrderError);
        await rejectsWith(db.migrate(new MigrationSet("reorder").add(b).add(c)), MigrationOutOfOrderError);
        assert.deepEqual(await db.migrate(new MigrationSet("reorder").add(a)), { applied: [], ahead: ["r/b"] });
        assert.deepEqual(await db.migrate(new MigrationSet("reorder")), { applied: [], ahead: ["r/a", "r/b"] });
      }),
  },
];
