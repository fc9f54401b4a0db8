import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe } from "vitest";
import { openPostgres, openSqlite } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";
import { describeMessageStorePrune } from "./message-store-prune-suite.js";
import { describeMessageStoreSeqs } from "./message-store-seq-suite.js";
import { describeMessageStore } from "./message-store-suite.js";

const dir = useTempDir("storeroom-bus-");
let n = 0;
describeMessageStore("sqlite file", () => openSqlite(join(dir, `store-${n++}.db`)));
describeMessageStorePrune("sqlite file", () => openSqlite(join(dir, `store-${n++}.db`)));
describeMessageStoreSeqs("sqlite file", () => openSqlite(join(dir, `store-${n++}.db`)));
describeMessageStore("sqlite memory", () => openSqlite(":memory:"));

describe.runIf(hasPostgres)("postgres", () => {
  const pg = useFreshPostgresDatabase();
  const openFresh = () => openPostgres(pg.url, { schema: `bus_${randomBytes(4).toString("hex")}`, max: 8 });
  describeMessageStore("postgres", openFresh);
  describeMessageStorePrune("postgres", openFresh);
  describeMessageStoreSeqs("postgres", openFresh);
});
