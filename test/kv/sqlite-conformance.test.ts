import { join } from "node:path";
import { describe, it } from "vitest";
import { openStore, SqlStore } from "../../src/kv/index.js";
import { openSqlite } from "../../src/sql/index.js";
import { runStoreConformance } from "../../src/testing/index.js";
import { otherSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-kv-");
let files = 0;

runStoreConformance(() => openStore("sqlite", ":memory:"), {
  describe,
  it: (name, fn) => it(name, fn, 20_000),
  name: "sqlite driver conformance (:memory:)",
});

runStoreConformance(() => openStore("sqlite", join(dir, `store-${files++}.db`)), {
  describe,
  it: (name, fn) => it(name, fn, 20_000),
  name: "sqlite driver conformance (file, WAL)",
});

// The whole suite runs on the default engine; the other one gets the driver conformance too.
for (const engine of otherSqliteEngines()) {
  runStoreConformance(
    async () =>
      SqlStore.open({ database: await openSqlite(join(dir, `store-${files++}.db`), { engine }), closeDatabase: true }),
    { describe, it: (name, fn) => it(name, fn, 20_000), name: `sqlite driver conformance (file, WAL, ${engine})` },
  );
}
