import { join } from "node:path";
import { openSqlite } from "../../src/sql/index.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";
import { executorContract } from "./executor-contract.js";

const dir = useTempDir();
let n = 0;
for (const engine of availableSqliteEngines()) {
  executorContract(`sqlite file (${engine})`, () => openSqlite(join(dir, `contract-${n++}.db`), { engine }));
  executorContract(`sqlite :memory: (${engine})`, () => openSqlite(":memory:", { engine }));
  executorContract(`sqlite file without read connection (${engine})`, () =>
    openSqlite(join(dir, `contract-single-${n++}.db`), { readConnection: false, engine }),
  );
}
