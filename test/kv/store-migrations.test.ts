import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DuplicateMigrationError } from "../../src/errors.js";
import {
  MemoryStore,
  openStore,
  STORE_MIGRATIONS_LOCK_NAMESPACE,
  STORE_MIGRATIONS_NAMESPACE,
  type Store,
  type Tx,
} from "../../src/kv/index.js";
import { MigrationSet } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-kv-migrations-");
const text = (b: Uint8Array) => new TextDecoder().decode(b);
let n = 0;

const drivers: [string, () => Promise<Store>][] = [
  ["memory", async () => new MemoryStore()],
  ["sqlite", () => openStore("sqlite", join(dir, `migrations-${n++}.db`))],
];

for (const [driver, open] of drivers) {
  describe(`kv migration records (${driver})`, () => {
    it("records each migration under its id in the reserved namespace as JSON {ordinal, set}, behind a lock row per set", async () => {
      const store = await open();
      const set = new MigrationSet<Tx>("tasks")
        .add({ id: "tasks/001", up: (tx) => tx.put("tasks", "a", new Uint8Array([1])) })
        .add({ id: "tasks/002", up: (tx) => tx.put("tasks", "b", new Uint8Array([2])) });
      expect(await store.migrate(set)).toEqual({ applied: ["tasks/001", "tasks/002"], ahead: [] });
      const records = await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, ""));
      expect(records.map((r) => [r.key, JSON.parse(text(r.value))])).toEqual([
        ["tasks/001", { ordinal: 0, set: "tasks" }],
        ["tasks/002", { ordinal: 1, set: "tasks" }],
      ]);
      const locks = await store.view((tx) => tx.scan(STORE_MIGRATIONS_LOCK_NAMESPACE, ""));
      expect(locks.map((r) => r.key)).toEqual(["tasks"]);
      await store.close();
    });

    it("refuses an id another set already applied with DuplicateMigrationError, running nothing", async () => {
      const store = await open();
      await store.migrate(new MigrationSet<Tx>("first").add({ id: "shared", up: async () => undefined }));
      let ran = false;
      const clashing = new MigrationSet<Tx>("second").add({
        id: "shared",
        async up(tx) {
          ran = true;
          await tx.put("second", "k", new Uint8Array([1]));
        },
      });
      await expect(store.migrate(clashing)).rejects.toBeInstanceOf(DuplicateMigrationError);
      expect(ran).toBe(false);
      expect(await store.view((tx) => tx.scan("second", ""))).toEqual([]);
      const records = await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, ""));
      expect(records.map((r) => [r.key, JSON.parse(text(r.value)).set])).toEqual([["shared", "first"]]);
      await store.close();
    });
  });
}
