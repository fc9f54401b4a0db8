import { join } from "node:path";
import { describe, it } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { runExecutorContract } from "../../src/testing/index.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir();
let n = 0;
for (const engine of availableSqliteEngines()) {
  runExecutorContract(() => openSqlite(join(dir, `contract-${n++}.db`), { engine }), {
    describe,
    it,
    name: `sqlite file (${engine}): executor contract`,
  });
  runExecutorContract(() => openSqlite(":memory:", { engine }), {
    describe,
    it,
    name: `sqlite :memory: (${engine}): executor contract`,
  });
  runExecutorContract(() => openSqlite(join(dir, `contract-single-${n++}.db`), { readConnection: false, engine }), {
    describe,
    it,
    name: `sqlite file without read connection (${engine}): executor contract`,
  });
}
