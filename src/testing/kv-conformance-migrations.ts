import { strict as assert } from "node:assert";
import { STORE_MIGRATIONS_NAMESPACE, type Tx } from "../kv/index.js";
import { MigrationSet } from "../sql/index.js";
import { bytes, rejectsWithCode, type StoreCase, scanKeys, text } from "./kv-conformance-helpers.js";

/** A set whose migrations count their runs and each put one marker key. */
function countingSet(ids: readonly string[], runs: Map<string, number>, name = "conformance"): MigrationSet<Tx> {
  const set = new MigrationSet<Tx>(name);
  for (const id of ids) {
    set.add({
      id,
      async up(tx) {
        runs.set(id, (runs.get(id) ?? 0) + 1);
        await tx.put("migrated", id, bytes(`by ${id}`));
      },
    });
  }
  return set;
}

/** The core migration cases, plus ordering rules, failure prefix and concurrent runners. */
export const migrationCases: StoreCase[] = [
  {
    name: "MigrateIdempotent",
    async run(store) {
      for (let i = 0; i < 3; i++) assert.deepEqual(await store.migrate(), { applied: [], ahead: [] });
      for (let i = 0; i < 3; i++)
        assert.deepEqual(await store.migrate(new MigrationSet<Tx>()), { applied: [], ahead: [] });
      assert.deepEqual(await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, "")), []);
    },
  },
  {
    name: "MigrationRunner",
    async run(store) {
      const runs = new Map<string, number>();
      const set = countingSet(["conf/001", "conf/002"], runs);
      assert.deepEqual((await store.migrate(set)).applied, ["conf/001", "conf/002"]);
      assert.equal(text(await store.view((tx) => tx.get("migrated", "conf/002"))), "by conf/002");
      const records = await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, ""));
      assert.deepEqual(
        records.map((r) => [r.key, JSON.parse(text(r.value)).ordinal]),
        [
          ["conf/001", 0],
          ["conf/002", 1],
        ],
      );
      assert.deepEqual(await store.migrate(set), { applied: [], ahead: [] });
      assert.deepEqual([...runs.values()], [1, 1], "a re-run applies nothing again");
      const extended = countingSet(["conf/001", "conf/002", "conf/003"], runs);
      assert.deepEqual((await store.migrate(extended)).applied, ["conf/003"]);
      assert.deepEqual([...runs.values()], [1, 1, 1]);
    },
  },
  {
    name: "MigrationReorderAndRemovalDetected",
    async run(store) {
      const runs = new Map<string, number>();
      await store.migrate(countingSet(["m/a", "m/b"], runs));
      const before = await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, ""));
      for (const ids of [["m/b", "m/a"], ["m/b"], ["m/a", "m/c"], ["m/c", "m/a", "m/b"]]) {
        await rejectsWithCode(store.migrate(countingSet(ids, runs)), "MIGRATION_OUT_OF_ORDER");
      }
      assert.equal(runs.get("m/c"), undefined, "nothing runs when the set diverges");
      assert.deepEqual(await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, "")), before);
    },
  },
  {
    name: "MigrationSetBehindTheStoreIsReportedAhead",
    async run(store) {
      const runs = new Map<string, number>();
      await store.migrate(countingSet(["m/a", "m/b"], runs));
      assert.deepEqual(await store.migrate(countingSet(["m/a"], runs)), { applied: [], ahead: ["m/b"] });
      assert.deepEqual(await store.migrate(countingSet([], runs)), { applied: [], ahead: ["m/a", "m/b"] });
      assert.deepEqual(await store.migrate(countingSet([], runs, "other-set")), { applied: [], ahead: [] });
      assert.deepEqual(await store.migrate(), { applied: [], ahead: [] }, "an absent set is the empty set 'default'");
    },
  },
  {
    name: "MigrationFailureKeepsTheAppliedPrefix",
    async run(store) {
      const boom = new Error("migration failed");
      const set = new MigrationSet<Tx>("conformance")
        .add({ id: "f/1", up: (tx) => tx.put("migrated", "f/1", bytes("1")) })
        .add({
          id: "f/2",
          async up(tx) {
            await tx.put("migrated", "f/2", bytes("2"));
            throw boom;
          },
        })
        .add({ id: "f/3", up: (tx) => tx.put("migrated", "f/3", bytes("3")) });
      const err = await store.migrate(set).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal(err, boom);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "migrated")), ["f/1"]);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, STORE_MIGRATIONS_NAMESPACE)), ["f/1"]);
    },
  },
  {
    name: "ConcurrentMigrateAppliesEachMigrationOnce",
    async run(store) {
      const runs = new Map<string, number>();
      const ids = ["c/1", "c/2", "c/3"];
      const results = await Promise.all(Array.from({ length: 4 }, () => store.migrate(countingSet(ids, runs))));
      assert.deepEqual(results.flatMap((r) => r.applied).sort(), ids);
      assert.deepEqual([...runs.values()], [1, 1, 1]);
    },
  },
];
