import pg from "pg";
import { openPostgres } from "../src/sql/index.js";
import { StateStore } from "../src/state/index.js";
import type { BenchCase } from "./harness.js";

const WRITERS = 8;
const PER_WRITER = 5;
const SEQUENTIAL = 10;
const KEYS = 1_000;
const value = "v".repeat(64);

const UPSERT =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at, entry_version) VALUES ($1, $2, $3, NULL, $4) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, " +
  "expires_at = excluded.expires_at, entry_version = excluded.entry_version";
const CURRENT_VERSION =
  "SELECT COALESCE(MAX(v), 0) AS version FROM (SELECT MAX(version) AS v FROM state_changes " +
  "UNION ALL SELECT version AS v FROM state_version WHERE id = 1) versions";
const APPEND_CHANGE =
  "INSERT INTO state_changes (version, change_type, group_name, entry_key, entry_value, changed_at) VALUES ($1, 'set', $2, $3, $4, $5)";

/**
 * StateStore.set on PostgreSQL beside the raw `pg` driver, one writer and eight at once: a bare
 * UPSERT, the same versioned write StateStore runs (advisory lock, read the version, upsert,
 * append the change, one transaction), that write without the lock (unsafe with concurrent
 * writers, it shows what the lock costs one writer) and with versions from a sequence instead
 * (what eight writers could reach if versions did not have to follow commit order).
 */
export async function statePostgresCases(url: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const schema = `bench_state_${process.pid}`;
  const db = await openPostgres(url, { schema, max: WRITERS });
  const state = await StateStore.open({ database: db, purgeIntervalMs: 0 });
  await db.run(`CREATE SCHEMA IF NOT EXISTS ${schema}_raw`);
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}_raw`, max: WRITERS });
  await pool.query(`CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL,
      expires_at BIGINT, entry_version BIGINT NOT NULL DEFAULT 1, PRIMARY KEY (group_name, entry_key));
    CREATE TABLE state_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
    INSERT INTO state_version VALUES (1, 1);
    CREATE TABLE state_changes (version BIGINT PRIMARY KEY, change_type TEXT NOT NULL, group_name TEXT NOT NULL,
      entry_key TEXT NOT NULL, entry_value TEXT, changed_at BIGINT NOT NULL);
    CREATE TABLE sequenced_changes (LIKE state_changes INCLUDING ALL);
    CREATE SEQUENCE change_versions`);

  let n = 0;
  const nextKey = () => {
    n = (n + 7919) % KEYS;
    return `k${n}`;
  };
  let written = 0;
  const nextValue = () => `${value}${written++}`;
  type Write = (client: pg.PoolClient) => Promise<unknown>;
  const bare: Write = (client) => client.query(UPSERT, ["bench", nextKey(), nextValue(), 1]);
  const versioned =
    (lock: boolean): Write =>
    async (client) => {
      await client.query("BEGIN");
      try {
        if (lock) await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", ["bench.versions"]);
        const version = Number((await client.query(CURRENT_VERSION)).rows[0].version) + 1;
        const key = nextKey();
        const v = nextValue();
        await client.query(UPSERT, ["bench", key, v, version]);
        await client.query(APPEND_CHANGE, [version, "bench", key, v, Date.now()]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw err;
      }
    };
  const sequenced: Write = async (client) => {
    await client.query("BEGIN");
    const version = Number((await client.query("SELECT nextval('change_versions') AS v")).rows[0].v);
    const key = nextKey();
    const v = nextValue();
    await client.query(UPSERT, ["bench", key, v, version]);
    await client.query(APPEND_CHANGE.replace("state_changes", "sequenced_changes"), [version, "bench", key, v, 0]);
    await client.query("COMMIT");
  };
  const rawRun = (writers: number, each: number, write: Write) => async () => {
    await Promise.all(
      Array.from({ length: writers }, async () => {
        const client = await pool.connect();
        try {
          for (let i = 0; i < each; i++) await write(client);
        } finally {
          client.release();
        }
      }),
    );
  };
  const oursRun = (writers: number, each: number) => async () => {
    await Promise.all(
      Array.from({ length: writers }, async () => {
        for (let i = 0; i < each; i++) await state.set("bench", nextKey(), nextValue());
      }),
    );
  };
  const one = "postgres set, 1 writer";
  const eight = `postgres set, ${WRITERS} writers`;
  const cases: BenchCase[] = [
    {
      group: one,
      name: "storeroom StateStore.set",
      role: "ours",
      batch: SEQUENTIAL,
      vs: "raw pg, the same versioned write",
      fn: oursRun(1, SEQUENTIAL),
    },
    { group: one, name: "raw pg, bare UPSERT", role: "raw", batch: SEQUENTIAL, fn: rawRun(1, SEQUENTIAL, bare) },
    {
      group: one,
      name: "raw pg, the same versioned write",
      role: "raw",
      batch: SEQUENTIAL,
      fn: rawRun(1, SEQUENTIAL, versioned(true)),
    },
    {
      group: one,
      name: "raw pg, the versioned write without the lock",
      role: "raw",
      batch: SEQUENTIAL,
      fn: rawRun(1, SEQUENTIAL, versioned(false)),
    },
    {
      group: eight,
      name: "storeroom StateStore.set",
      role: "ours",
      batch: WRITERS * PER_WRITER,
      vs: "raw pg, the same versioned write",
      fn: oursRun(WRITERS, PER_WRITER),
    },
    {
      group: eight,
      name: "raw pg, bare UPSERT",
      role: "raw",
      batch: WRITERS * PER_WRITER,
      fn: rawRun(WRITERS, PER_WRITER, bare),
    },
    {
      group: eight,
      name: "raw pg, the same versioned write",
      role: "raw",
      batch: WRITERS * PER_WRITER,
      fn: rawRun(WRITERS, PER_WRITER, versioned(true)),
    },
    {
      group: eight,
      name: "raw pg, versions from a sequence (not in commit order)",
      role: "raw",
      batch: WRITERS * PER_WRITER,
      fn: rawRun(WRITERS, PER_WRITER, sequenced),
    },
  ];
  return {
    cases,
    close: async () => {
      await state.close();
      await db.run(`DROP SCHEMA ${schema} CASCADE`);
      await db.run(`DROP SCHEMA ${schema}_raw CASCADE`);
      await db.close();
      await pool.end();
    },
  };
}
