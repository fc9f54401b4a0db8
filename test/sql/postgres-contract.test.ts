import { afterAll, describe, it } from "vitest";
import { openPostgres } from "../../src/sql/index.js";
import { runExecutorContract } from "../../src/testing/index.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";

describe.runIf(hasPostgres)("postgres", () => {
  const created: string[] = [];
  afterAll(async () => {
    for (const name of created) await dropDatabase(name);
  });
  runExecutorContract(
    async () => {
      const { name, url } = await createDatabase("sqlc");
      created.push(name);
      return openPostgres(url, { max: 4 });
    },
    { describe, it, name: "postgres: executor contract" },
  );
});
