import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe } from "vitest";
import { openPostgres, openSqlite } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";
import { describeAuditLog } from "./audit-log-suite.js";

const dir = useTempDir("storeroom-audit-");
let n = 0;
// Two SQLite handles in one process would block each other (better-sqlite3 waits synchronously
// for the lock), so the two-handle case runs on PostgreSQL only.
describeAuditLog("sqlite file", () => openSqlite(join(dir, `audit-${n++}.db`)));
describeAuditLog("sqlite memory", () => openSqlite(":memory:"));

describe.runIf(hasPostgres)("postgres", () => {
  const pg = useFreshPostgresDatabase();
  const schemas = new WeakMap<object, string>();
  describeAuditLog(
    "postgres",
    async () => {
      const schema = `audit_${randomBytes(4).toString("hex")}`;
      const db = await openPostgres(pg.url, { schema, max: 4 });
      schemas.set(db, schema);
      return db;
    },
    (db) => openPostgres(pg.url, { schema: schemas.get(db) as string, max: 4 }),
  );
});
