import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { openStore, STORE_MIGRATIONS_NAMESPACE } from "../../src/kv/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const run = promisify(execFile);
const child = new URL("./fixtures/migrate-child.ts", import.meta.url).pathname;
const ids = ["race/0", "race/1", "race/2", "race/3", "race/4"];

async function race(driver: string, dsn: string): Promise<void> {
  const outputs = await Promise.all(
    Array.from({ length: 4 }, () => run(process.execPath, ["--import", "tsx", child, driver, dsn])),
  );
  expect(outputs.flatMap((o) => JSON.parse(o.stdout.trim()) as string[]).sort()).toEqual(ids);
  const store = await openStore(driver, dsn);
  try {
    const records = await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, ""));
    expect(records.map((r) => [r.key, JSON.parse(new TextDecoder().decode(r.value)).ordinal])).toEqual(
      ids.map((id, i) => [id, i]),
    );
    expect((await store.view((tx) => tx.scan("race", ""))).map((e) => e.key)).toEqual(ids);
  } finally {
    await store.close();
  }
}

describe("kv migrations from several processes at once", () => {
  const dir = useTempDir("storeroom-kv-race-");
  it("apply each migration once on one SQLite file", () => race("sqlite", join(dir, "race.db")), 60_000);

  describe.runIf(hasPostgres)("postgres", () => {
    const fresh = useFreshPostgresDatabase();
    it("apply each migration once on one PostgreSQL database", () => race("postgres", fresh.url), 60_000);
  });
});
