import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { openStore, SqlStore } from "../src/kv/index.js";
import { openSqlite } from "../src/sql/index.js";
import { kvBenchKey, kvBenchValue, runStoreBenchmarks } from "../src/testing/index.js";
import { type BenchCase, runSuite } from "./harness.js";
import { scratchPostgres } from "./scratch-postgres.js";

const BATCH = 100;
const KEYS = 1000;

function repeat(op: () => unknown): () => void {
  return () => {
    for (let n = 0; n < BATCH; n++) op();
  };
}

/**
 * better-sqlite3 on its own `:memory:` database with the kv driver's table and statements:
 * the floor the sqlite driver is measured against, with and without the BEGIN/COMMIT that a
 * `view`/`update` costs.
 */
function rawSqliteCases(path: string, prefix: string): { cases: BenchCase[]; close: () => void } {
  const db = new BetterSqlite3(path);
  if (path !== ":memory:") db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec(
    "CREATE TABLE kv (ns BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID",
  );
  const put = db.prepare(
    "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
  );
  const get = db.prepare("SELECT value FROM kv WHERE ns = ? AND key = ?");
  const scan = db.prepare("SELECT key, value FROM kv WHERE ns = ? ORDER BY key");
  const begin = db.prepare("BEGIN");
  const beginImmediate = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const bench = Buffer.from("bench");
  const scanNs = Buffer.from("scan");
  const value = Buffer.from(kvBenchValue);
  db.transaction(() => {
    for (let i = 0; i < KEYS; i++) put.run(bench, Buffer.from(kvBenchKey(i)), value);
    for (let i = 0; i < 100; i++) put.run(scanNs, Buffer.from(kvBenchKey(i)), value);
  })();
  const keys = Array.from({ length: KEYS }, (_, i) => kvBenchKey(i));
  let next = 0;
  // Encoding the string key is part of the work, as in the driver.
  const key = (): Buffer => {
    next = (next + 1) % KEYS;
    return Buffer.from(keys[next] as string);
  };
  const inTx = (first: BetterSqlite3.Statement, fn: () => unknown) => () => {
    first.run();
    fn();
    commit.run();
  };
  const raw = (group: string, name: string, fn: () => unknown): BenchCase => ({
    group: `${prefix} ${group}`,
    name,
    role: "raw",
    batch: BATCH,
    fn: repeat(fn),
  });
  const getRow = () => get.get(bench, key());
  const cases = [
    raw("kv Get", "raw better-sqlite3 SELECT", getRow),
    raw("kv Get (vs BEGIN;SELECT;COMMIT)", "raw better-sqlite3 BEGIN;SELECT;COMMIT", inTx(begin, getRow)),
    raw(
      "kv Put",
      "raw better-sqlite3 BEGIN IMMEDIATE;UPSERT;COMMIT",
      inTx(beginImmediate, () => put.run(bench, key(), value)),
    ),
    raw(
      "kv Update",
      "raw better-sqlite3 BEGIN IMMEDIATE;COMMIT",
      inTx(beginImmediate, () => undefined),
    ),
    raw(
      "kv View",
      "raw better-sqlite3 BEGIN;COMMIT",
      inTx(begin, () => undefined),
    ),
    raw(
      "kv Scan100",
      "raw better-sqlite3 BEGIN;SELECT 100;COMMIT",
      inTx(begin, () => scan.all(scanNs)),
    ),
  ];
  return { cases, close: () => db.close() };
}

/**
 * The same point read through the foundation's `SqliteDatabase.get` with no transaction at all:
 * not a kv operation, but the ceiling for a `view` once the per-transaction cost is gone.
 */
async function noTransactionCeiling(): Promise<{ case: BenchCase; close: () => Promise<void> }> {
  const db = await openSqlite(":memory:");
  const store = await SqlStore.open({ database: db });
  await store.update(async (tx) => {
    for (let i = 0; i < KEYS; i++) await tx.put("bench", kvBenchKey(i), kvBenchValue);
  });
  const ns = Buffer.from("bench");
  const keys = Array.from({ length: KEYS }, (_, i) => kvBenchKey(i));
  let next = 0;
  const benchCase: BenchCase = {
    group: "sqlite kv Get",
    name: "storeroom SqliteDatabase.get, no view (ceiling)",
    role: "ours",
    batch: BATCH,
    fn: async () => {
      for (let n = 0; n < BATCH; n++) {
        next = (next + 1) % KEYS;
        await db.get("SELECT value FROM kv WHERE ns = $1 AND key = $2", [ns, Buffer.from(keys[next] as string)]);
      }
    },
  };
  return { case: benchCase, close: () => db.close() };
}

export default async function kvBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-kv-bench-"));
  const raw = rawSqliteCases(":memory:", "sqlite");
  const rawFile = rawSqliteCases(join(dir, "raw.db"), "sqlite-file");
  const memory = await runStoreBenchmarks(() => openStore("memory", ""), {
    name: "storeroom kv memory",
    groupPrefix: "memory ",
    batch: BATCH,
    keys: KEYS,
  });
  // Measured before anything runs a SQLite transaction: the foundation's AsyncLocalStorage turns
  // on Node 20's promise hooks for the whole process from then on, which taxes every promise.
  await runSuite("kv-memory", memory.cases);
  const memoryGet = memory.cases.find((c) => c.group === "memory kv Get");
  const sqlite = await runStoreBenchmarks(() => openStore("sqlite", ":memory:"), {
    name: "storeroom kv sqlite",
    groupPrefix: "sqlite ",
    batch: BATCH,
    keys: KEYS,
  });
  const sqliteFile = await runStoreBenchmarks(() => openStore("sqlite", join(dir, "ours.db")), {
    name: "storeroom kv sqlite (file)",
    groupPrefix: "sqlite-file ",
    batch: BATCH,
    keys: KEYS,
  });
  const ceiling = await noTransactionCeiling();
  const sqliteGet = sqlite.cases.find((c) => c.group === "sqlite kv Get");
  const fileGet = sqliteFile.cases.find((c) => c.group === "sqlite-file kv Get");
  const extra: BenchCase[] = [
    ...(sqliteGet ? [{ ...sqliteGet, group: "sqlite kv Get (vs BEGIN;SELECT;COMMIT)" }] : []),
    ...(fileGet ? [fileGet, { ...fileGet, group: "sqlite-file kv Get (vs BEGIN;SELECT;COMMIT)" }] : []),
    ...rawFile.cases.filter((c) => c.group.startsWith("sqlite-file kv Get")),
    ceiling.case,
    ...(memoryGet ? [{ ...memoryGet, group: "memory kv Get (after SQLite transactions ran)" }] : []),
  ];
  const url = process.env.POSTGRES_URL;
  const scratch = url ? await scratchPostgres(url, "kv_bench") : undefined;
  if (!scratch) console.warn("POSTGRES_URL is not set: postgres driver cases skipped");
  const postgres = scratch
    ? await runStoreBenchmarks(() => openStore("postgres", scratch.url), {
        name: "storeroom kv postgres",
        groupPrefix: "postgres ",
        batch: 10,
        keys: KEYS,
      })
    : undefined;
  try {
    await runSuite("kv", [...raw.cases, ...sqlite.cases, ...extra, ...(postgres?.cases ?? [])]);
  } finally {
    await memory.close();
    await sqlite.close();
    await sqliteFile.close();
    raw.close();
    rawFile.close();
    await ceiling.close();
    await postgres?.close();
    await scratch?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}
