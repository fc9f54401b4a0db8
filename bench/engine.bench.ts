import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { openPostgres, openSqlite, type SqliteEngine } from "../src/sql/index.js";
import { nodeSqliteAvailable } from "../src/sql/sqlite/node-sqlite-connection.js";
import { type BenchCase, runSuite } from "./harness.js";

const ROWS = 10_000;
const value = "x".repeat(100);

/** The bare driver calls one engine case needs; statements are prepared once. */
interface RawSqlite {
  get(k: string): unknown;
  upsert(k: string, v: string): void;
  inTransaction(fn: () => void): void;
  close(): void;
}

function rawBetterSqlite3(path: string): RawSqlite {
  const db = new BetterSqlite3(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
  const get = db.prepare("SELECT v FROM kv WHERE k = ?");
  const upsert = db.prepare("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  return {
    get: (k) => get.get(k),
    upsert: (k, v) => upsert.run(k, v),
    inTransaction: (fn) => db.transaction(fn)(),
    close: () => db.close(),
  };
}

interface NodeSqliteStatement {
  get(...params: unknown[]): unknown;
  run(...params: unknown[]): unknown;
}

function rawNodeSqlite(path: string): RawSqlite {
  const { DatabaseSync } = createRequire(import.meta.url)("node:sqlite") as {
    DatabaseSync: new (
      path: string,
    ) => { exec(sql: string): void; prepare(sql: string): NodeSqliteStatement; close(): void };
  };
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
  db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
  const get = db.prepare("SELECT v FROM kv WHERE k = ?");
  const upsert = db.prepare("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
  const begin = db.prepare("BEGIN");
  const commit = db.prepare("COMMIT");
  return {
    get: (k) => get.get(k),
    upsert: (k, v) => upsert.run(k, v),
    inTransaction: (fn) => {
      begin.run();
      try {
        fn();
        commit.run();
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },
    close: () => db.close(),
  };
}

/**
 * Each engine bare and through storeroom, in the same groups. The storeroom case on
 * node:sqlite also reports its ratio to the storeroom case on better-sqlite3 ("x vs"): the
 * number that decides the default engine.
 */
async function sqliteCases(dir: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const engines: SqliteEngine[] = nodeSqliteAvailable() ? ["better-sqlite3", "node:sqlite"] : ["better-sqlite3"];
  if (!nodeSqliteAvailable()) console.warn(`node:sqlite is not available on ${process.version}: better-sqlite3 only`);
  const upsert = "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v";
  const cases: BenchCase[] = [];
  const closers: (() => unknown)[] = [];
  for (const engine of engines) {
    const tag = engine.replace(":", "-");
    const raw =
      engine === "node:sqlite"
        ? rawNodeSqlite(join(dir, `raw-${tag}.db`))
        : rawBetterSqlite3(join(dir, `raw-${tag}.db`));
    raw.inTransaction(() => {
      for (let i = 0; i < ROWS; i++) raw.upsert(`k${i}`, value);
    });
    const ours = await openSqlite(join(dir, `ours-${tag}.db`), { engine });
    await ours.run("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
    await ours.transaction(async (tx) => {
      for (let i = 0; i < ROWS; i++) await tx.run(upsert, [`k${i}`, value]);
    });
    closers.push(
      () => raw.close(),
      () => ours.close(),
    );
    const key = keyCycle();
    const rawRole = engine === "better-sqlite3" ? "raw" : "peer";
    const vs = engine === "node:sqlite" ? "storeroom on better-sqlite3" : undefined;
    cases.push(
      {
        group: "sqlite point GET",
        name: `raw ${engine}`,
        role: rawRole,
        batch: 100,
        fn: () => {
          for (let n = 0; n < 100; n++) raw.get(key());
        },
      },
      {
        group: "sqlite point GET",
        name: `storeroom on ${engine}`,
        role: "ours",
        batch: 100,
        ...(vs === undefined ? {} : { vs }),
        fn: async () => {
          for (let n = 0; n < 100; n++) await ours.get("SELECT v FROM kv WHERE k = $1", [key()]);
        },
      },
      {
        group: "sqlite autocommit UPSERT",
        name: `raw ${engine}`,
        role: rawRole,
        batch: 100,
        fn: () => {
          for (let n = 0; n < 100; n++) raw.upsert(key(), value);
        },
      },
      {
        group: "sqlite autocommit UPSERT",
        name: `storeroom on ${engine}`,
        role: "ours",
        batch: 100,
        ...(vs === undefined ? {} : { vs }),
        fn: async () => {
          for (let n = 0; n < 100; n++) await ours.run(upsert, [key(), value]);
        },
      },
      {
        group: "sqlite 1000-row UPSERT in one transaction",
        name: `raw ${engine}`,
        role: rawRole,
        batch: 1000,
        fn: () =>
          raw.inTransaction(() => {
            for (let n = 0; n < 1000; n++) raw.upsert(key(), value);
          }),
      },
      {
        group: "sqlite 1000-row UPSERT in one transaction",
        name: `storeroom on ${engine}`,
        role: "ours",
        batch: 1000,
        ...(vs === undefined ? {} : { vs }),
        fn: () =>
          ours.transaction(async (tx) => {
            for (let n = 0; n < 1000; n++) await tx.run(upsert, [key(), value]);
          }),
      },
    );
  }
  return {
    cases,
    close: async () => {
      for (const close of closers) await close();
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
