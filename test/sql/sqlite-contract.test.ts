import { join } from "node:path";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { executorContract } from "./executor-contract.js";

const dir = useTempDir();
let n = 0;
executorContract("sqlite file", () => openSqlite(join(dir, `contract-${n++}.db`)));
executorContract("sqlite :memory:", () => openSqlite(":memory:"));
executorContract("sqlite file without read connection", () =>
  openSqlite(join(dir, `contract-single-${n++}.db`), { readConnection: false }),
);
