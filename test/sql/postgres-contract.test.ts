import { afterAll, describe } from "vitest";
import { openPostgres } from "../../src/sql/index.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";
import { executorContract } from "./executor-contract.js";

describe.runIf(hasPostgres)("postgres", () => {
  const created: string[] = [];
  afterAll(async () => {
    for (const name of created) await dropDatabase(name);
  });
  executorContract("postgres", async () => {
    const { name, url } = await createDatabase("sqlc");
    created.push(name);
    return openPostgres(url, { max: 4 });
  });
});
