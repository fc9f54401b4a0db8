import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { openPostgres, openSqlite } from "../src/sql/index.js";
import { type BenchCase, runSuite } from "./harness.js";

const ROWS = 10_000;
const value = "x".repeat(100);

async function sqliteCases(dir: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const raw = new BetterSqlite3(join(dir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
  const ours = await openSqlite(join(dir, "ours.db"));
  await ours.run("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
  const rawInsert = raw.prepare("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  raw.transaction(() => {
    for (let i = 0; i < ROWS; i++) rawInsert.run(`k${i}`, value);
  })();
  await ours.transaction(async (tx) => {
    for (let i = 0; i < ROWS; i++) {
      await tx.run("INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v", [
        `k${i}`,
        value,
      ]);
    }
  });
  const rawGet = raw.prepare("SELECT v FROM kv WHERE k = ?");
  const key = keyCycle();
  const upsert = "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
  const cases: BenchCase[] = [
    {
      group: "sqlite point GET",
      name: "raw better-sqlite3",
      role: "raw",
      batch: 100,
      fn: () => {
        for (let n = 0; n < 100; n++) rawGet.get(key());
      },
    },
    {
      group: "sqlite point GET",
      name: "storeroom SqliteDatabase.get",
      role: "ours",
      batch: 100,
      fn: async () => {
        for (let n = 0; n < 100; n++) await ours.get("SELECT v FROM kv WHERE k = $1", [key()]);
      },
    },
    {
      group: "sqlite autocommit UPSERT",
      name: "raw better-sqlite3",
      role: "raw",
      batch: 100,
      fn: () => {
        for (let n = 0; n < 100; n++) rawInsert.run(key(), value);
      },
    },
    {
      group: "sqlite autocommit UPSERT",
      name: "storeroom SqliteDatabase.run",
      role: "ours",
      batch: 100,
      fn: async () => {
        for (let n = 0; n < 100; n++) await ours.run(upsert, [key(), value]);
      },
    },
    {
      group: "sqlite 1000-row UPSERT in one transaction",
      name: "raw better-sqlite3",
      role: "raw",
      batch: 1000,
      fn: () =>
        raw.transaction(() => {
          for (let n = 0; n < 1000; n++) rawInsert.run(key(), value);
        })(),
    },
    {
      group: "sqlite 1000-row UPSERT in one transaction",
      name: "storeroom transaction",
      role: "ours",
      batch: 1000,
      fn: () =>
        ours.transaction(async (tx) => {
          for (let n = 0; n < 1000; n++) await tx.run(upsert, [key(), value]);
        }),
    },
  ];
  return {
    cases,
    close: async () => {
      raw.close();
      await ours.close();
    },
  };
}

async function postgresCases(url: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  await pool.query("DROP TABLE IF EXISTS bench_kv; CREATE TABLE bench_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  await pool.query("INSERT INTO bench_kv SELECT 'k' || g, $1 FROM generate_series(0, $2) g", [value, ROWS - 1]);
  const ours = await openPostgres(url, { max: 4 });
  const key = keyCycle();
  const get = "SELECT v FROM bench_kv WHERE k = $1";
  const upsert = "INSERT INTO bench_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
  const cases: BenchCase[] = [
    {
      group: "postgres point GET",
      name: "raw pg (prepared)",
      role: "raw",
      fn: () => pool.query({ name: "g", text: get, values: [key()] }),
    },
    {
      group: "postgres point GET",
      name: "storeroom PostgresDatabase.get",
      role: "ours",
      fn: () => ours.get(get, [key()]),
    },
    {
      group: "postgres UPSERT",
      name: "raw pg (prepared)",
      role: "raw",
      fn: () => pool.query({ name: "u", text: upsert, values: [key(), value] }),
    },
    {
      group: "postgres UPSERT",
      name: "storeroom PostgresDatabase.run",
      role: "ours",
      fn: () => ours.run(upsert, [key(), value]),
    },
  ];
  return {
    cases,
    close: async () => {
      await pool.query("DROP TABLE IF EXISTS bench_kv");
      await pool.end();
      await ours.close();
    },
  };
}

/** Walks the key space in a fixed stride so consecutive operations hit different pages. */
function keyCycle(): () => string {
  let i = 0;
  return () => {
    i = (i + 7919) % ROWS;
    return `k${i}`;
  };
}

export default async function engineBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-"));
  const sqlite = await sqliteCases(dir);
  const url = process.env.POSTGRES_URL;
  const postgres = url ? await postgresCases(url) : undefined;
  if (!postgres) console.warn("POSTGRES_URL is not set: PostgreSQL cases skipped");
  try {
    await runSuite("engine", [...sqlite.cases, ...(postgres?.cases ?? [])]);
  } finally {
    await sqlite.close();
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
