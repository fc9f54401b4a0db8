import { randomBytes } from "node:crypto";
import { describe, it } from "vitest";
import { SqlStore } from "../../src/kv/index.js";
import { openPostgres } from "../../src/sql/index.js";
import { runStoreConformance } from "../../src/testing/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";

describe.runIf(hasPostgres)("postgres driver", () => {
  const db = useFreshPostgresDatabase();

  // A fresh schema per case keeps cases independent; the file's database is dropped afterwards.
  // The full 8 connections x 100 increments run in postgres-store.test.ts.
  runStoreConformance(
    async () =>
      SqlStore.open({
        database: await openPostgres(db.url, { schema: `kv_${randomBytes(5).toString("hex")}` }),
        closeDatabase: true,
      }),
    {
      describe,
      it: (name, fn) => it(name, fn, 60_000),
      name: "postgres driver conformance",
      lostUpdate: { workers: 8, increments: 25 },
    },
  );
});
