import { afterAll, describe, it } from "vitest";
import { openStore } from "../../src/kv/index.js";
import { runStoreConformance } from "../../src/testing/index.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";

describe.runIf(hasPostgres)("postgres driver", () => {
  const databases: string[] = [];
  afterAll(async () => {
    for (const name of databases) await dropDatabase(name);
  });

  // A fresh database per case keeps cases independent without a cleanup step in the suite.
  runStoreConformance(
    async () => {
      const db = await createDatabase("kv");
      databases.push(db.name);
      return openStore("postgres", db.url);
    },
    { describe, it: (name, fn) => it(name, fn, 60_000), name: "postgres driver conformance" },
  );
});
