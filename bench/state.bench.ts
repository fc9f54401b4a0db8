import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import BetterSqlite3 from "better-sqlite3";
import Keyv from "keyv";
import { StateStore } from "../src/state/index.js";
import { type BenchCase, runSuite } from "./harness.js";
import { statePostgresCases } from "./state-postgres-cases.js";

const KEYS = 1_000;
const BIG_GROUP = 10_000;
const RENDER_KEYS = 50;
const BATCH = 100;
const value = "v".repeat(64);

const UPSERT =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at, entry_version) VALUES (?, ?, ?, ?, ?) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, " +
  "expires_at = excluded.expires_at, entry_version = excluded.entry_version";
const CURRENT_VERSION =
  "SELECT COALESCE(MAX(v), 0) AS version FROM (SELECT MAX(version) AS v FROM state_changes " +
  "UNION ALL SELECT version AS v FROM state_version WHERE id = 1) versions";
const APPEND_CHANGE =
  "INSERT INTO state_changes (version, change_type, group_name, entry_key, entry_value, changed_at) VALUES (?, 'set', ?, ?, ?, ?)";

/**
 * state: StateStore (SQLite file) vs the raw better-sqlite3 driver on the same schema vs Keyv +
 * @keyv/sqlite, each on its own file in one temp directory, all in WAL mode with
 * synchronous=NORMAL. Every write stores a new value: SQLite skips writing a page when an
 * UPSERT rewrites identical bytes, which would turn a baseline into a no-op (one case shows it).
 * With POSTGRES_URL set, the same writes on PostgreSQL, one writer and eight.
 */
export default async function stateBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-state-bench-"));
  const state = await StateStore.open({ databasePath: join(dir, "ours.db"), purgeIntervalMs: 0 });
  const unlogged = await StateStore.open({
    databasePath: join(dir, "unlogged.db"),
    purgeIntervalMs: 0,
    changeRetentionMs: 0,
  });
  const raw = new BetterSqlite3(join(dir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec(`CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL,
    expires_at INTEGER, entry_version INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (group_name, entry_key));
    CREATE INDEX entries_expires_at ON entries (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE state_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
    INSERT INTO state_version VALUES (1, 1);
    CREATE TABLE state_changes (version INTEGER PRIMARY KEY, change_type TEXT NOT NULL, group_name TEXT NOT NULL,
      entry_key TEXT NOT NULL, entry_value TEXT, changed_at INTEGER NOT NULL)`);
  const keyvStore = new KeyvSqlite(`sqlite://${join(dir, "keyv.db")}`);
  await keyvStore.query("PRAGMA journal_mode = WAL");
  await keyvStore.query("PRAGMA synchronous = NORMAL");
  const keyv = new Keyv({ store: keyvStore });
  const postgres = process.env.POSTGRES_URL ? await statePostgresCases(process.env.POSTGRES_URL) : undefined;
  if (postgres === undefined) console.warn("POSTGRES_URL is not set: PostgreSQL cases skipped");

  const rawUpsert = raw.prepare(UPSERT);
  const rawGet = raw.prepare("SELECT entry_value, expires_at FROM entries WHERE group_name = ? AND entry_key = ?");
  const rawAll = raw.prepare(
    "SELECT entry_key, entry_value FROM entries WHERE group_name = ? AND (expires_at IS NULL OR expires_at > ?)",
  );
  const rawVersion = raw.prepare(CURRENT_VERSION);
  const rawEntryVersion = raw.prepare(
    "SELECT entry_version, expires_at FROM entries WHERE group_name = ? AND entry_key = ?",
  );
  const rawChange = raw.prepare(APPEND_CHANGE);
  const begin = raw.prepare("BEGIN IMMEDIATE");
  const commit = raw.prepare("COMMIT");
  const rollback = raw.prepare("ROLLBACK");
  // What StateStore.set runs, minus the library: read the store version, upsert, append, one transaction.
  const rawVersionedSet = (group: string, key: string, v: string, expected?: number): number => {
    begin.run();
    try {
      const version = (rawVersion.get() as { version: number }).version + 1;
      if (expected !== undefined) {
        const row = rawEntryVersion.get(group, key) as { entry_version: number } | undefined;
        if ((row?.entry_version ?? 0) !== expected) throw new Error("conflict");
      }
      rawUpsert.run(group, key, v, null, version);
      rawChange.run(version, group, key, v, Date.now());
      commit.run();
      return version;
    } catch (err) {
      rollback.run();
      throw err;
    }
  };

  // Seed identical data everywhere.
  await state.transaction(async (tx) => {
    for (let i = 0; i < KEYS; i++) await tx.set("bench", `k${i}`, value);
    for (let i = 0; i < BIG_GROUP; i++) await tx.set("big", `k${i}`, value);
    for (let i = 0; i < RENDER_KEYS; i++) await tx.set("tpl", `k${i}`, `value${i}`);
  });
  raw.transaction(() => {
    for (let i = 0; i < KEYS; i++) rawUpsert.run("bench", `k${i}`, value, null, 1);
    for (let i = 0; i < BIG_GROUP; i++) rawUpsert.run("big", `k${i}`, value, null, 1);
    for (let i = 0; i < RENDER_KEYS; i++) rawUpsert.run("tpl", `k${i}`, `value${i}`, null, 1);
  })();
  for (let i = 0; i < KEYS; i++) await keyv.set(`bench:k${i}`, value);

  let n = 0;
  const nextKey = () => {
    n = (n + 7919) % KEYS;
    return `k${n}`;
  };
  let written = 0;
  const nextValue = () => `${value}${written++}`;
  const template = Array.from({ length: RENDER_KEYS }, (_, i) => `k${i}={{ .k${i} }}`).join("\n");
  // The same output written as a Go template loop over the group (key order is k0, k1, k10, ...).
  const rangeTemplate = "{{ range $k, $v := . }}{{ $k }}={{ $v }}\n{{ end }}";

  const casKeys = 100;
  const ourVersions = new Map<string, number>();
  const rawVersions = new Map<string, number>();
  for (let i = 0; i < casKeys; i++) {
    ourVersions.set(`c${i}`, await state.set("cas", `c${i}`, value));
    rawVersions.set(`c${i}`, rawVersionedSet("cas", `c${i}`, value));
  }
  let c = 0;
  const nextCas = () => {
    c = (c + 37) % casKeys;
    return `c${c}`;
  };
  const rawRender = () => {
    const map = new Map<string, string>();
    for (const r of rawAll.all("tpl", Date.now()) as { entry_key: string; entry_value: string }[]) {
      map.set(r.entry_key, r.entry_value);
    }
    return template.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, k: string) => map.get(k) ?? "<no value>");
  };
  const repeat = (fn: () => unknown) => () => {
    for (let i = 0; i < BATCH; i++) fn();
  };
  const repeatAsync = (fn: () => Promise<unknown>) => async () => {
    for (let i = 0; i < BATCH; i++) await fn();
  };

  const versionedRaw = "raw better-sqlite3, the same versioned write";
  const cases: BenchCase[] = [
    {
      group: "set",
      name: "storeroom StateStore.set",
      role: "ours",
      batch: BATCH,
      vs: versionedRaw,
      fn: repeatAsync(() => state.set("bench", nextKey(), nextValue())),
    },
    {
      group: "set",
      name: "storeroom StateStore.set, changeRetentionMs: 0",
      role: "ours",
      batch: BATCH,
      vs: "storeroom StateStore.set",
      fn: repeatAsync(() => unlogged.set("bench", nextKey(), nextValue())),
    },
    {
      group: "set",
      name: "raw better-sqlite3, bare UPSERT",
      role: "raw",
      batch: BATCH,
      fn: repeat(() => rawUpsert.run("bench", nextKey(), nextValue(), null, 1)),
    },
    {
      group: "set",
      name: versionedRaw,
      role: "raw",
      batch: BATCH,
      fn: repeat(() => rawVersionedSet("bench", nextKey(), nextValue())),
    },
    {
      group: "set",
      name: "raw better-sqlite3, bare UPSERT of identical bytes (writes no page)",
      role: "raw",
      batch: BATCH,
      fn: repeat(() => rawUpsert.run("bench", nextKey(), value, null, 1)),
    },
    {
      group: "set",
      name: "keyv + @keyv/sqlite",
      role: "peer",
      batch: BATCH,
      fn: repeatAsync(() => keyv.set(`bench:${nextKey()}`, nextValue())),
    },
    {
      group: "get",
      name: "storeroom StateStore.get",
      role: "ours",
      batch: BATCH,
      fn: repeatAsync(() => state.get("bench", nextKey())),
    },
    {
      group: "get",
      name: "raw better-sqlite3",
      role: "raw",
      batch: BATCH,
      fn: repeat(() => {
        const row = rawGet.get("bench", nextKey()) as { expires_at: number | null } | undefined;
        if (row === undefined || (row.expires_at !== null && row.expires_at <= Date.now())) throw new Error("miss");
      }),
    },
    {
      group: "get",
      name: "keyv + @keyv/sqlite",
      role: "peer",
      batch: BATCH,
      fn: repeatAsync(() => keyv.get(`bench:${nextKey()}`)),
    },
    {
      group: "setWithTtl",
      name: "storeroom StateStore.setWithTtl",
      role: "ours",
      batch: BATCH,
      fn: repeatAsync(() => state.setWithTtl("bench", nextKey(), nextValue(), 3_600_000)),
    },
    {
      group: "setWithTtl",
      name: "raw better-sqlite3, bare UPSERT",
      role: "raw",
      batch: BATCH,
      fn: repeat(() => rawUpsert.run("bench", nextKey(), nextValue(), Date.now() + 3_600_000, 1)),
    },
    {
      group: "setWithTtl",
      name: "keyv + @keyv/sqlite",
      role: "peer",
      batch: BATCH,
      fn: repeatAsync(() => keyv.set(`bench:${nextKey()}`, nextValue(), 3_600_000)),
    },
    {
      group: "versioned writes (per key)",
      name: "storeroom set",
      role: "ours",
      batch: BATCH,
      fn: repeatAsync(async () => {
        const key = nextCas();
        ourVersions.set(key, await state.set("cas", key, nextValue()));
      }),
    },
    {
      group: "versioned writes (per key)",
      name: "storeroom set with ifVersion",
      role: "ours",
      batch: BATCH,
      vs: "storeroom set",
      fn: repeatAsync(async () => {
        const key = nextCas();
        ourVersions.set(key, await state.set("cas", key, nextValue(), { ifVersion: ourVersions.get(key) as number }));
      }),
    },
    {
      group: "versioned writes (per key)",
      name: "storeroom batch of 10 sets",
      role: "ours",
      batch: BATCH,
      vs: "storeroom set",
      fn: async () => {
        for (let i = 0; i < BATCH / 10; i++) {
          const ops = Array.from({ length: 10 }, () => ({
            type: "set" as const,
            group: "cas",
            key: nextCas(),
            value: nextValue(),
          }));
          const { versions } = await state.batch(ops);
          ops.forEach((o, j) => {
            ourVersions.set(o.key, versions[j] as number);
          });
        }
      },
    },
    {
      group: "versioned writes (per key)",
      name: "raw better-sqlite3, the same statements as set with ifVersion",
      role: "raw",
      batch: BATCH,
      fn: repeat(() => {
        const key = nextCas();
        rawVersions.set(key, rawVersionedSet("cas", key, nextValue(), rawVersions.get(key) as number));
      }),
    },
    { group: "getAll (10k keys)", name: "storeroom StateStore.getAll", role: "ours", fn: () => state.getAll("big") },
    { group: "getAll (10k keys)", name: "raw better-sqlite3", role: "raw", fn: () => rawAll.all("big", Date.now()) },
    {
      group: "render (50 keys)",
      name: "storeroom StateStore.render",
      role: "ours",
      fn: () => state.render(template, "tpl"),
    },
    {
      group: "render (50 keys)",
      name: "storeroom StateStore.render with range",
      role: "ours",
      vs: "storeroom StateStore.render",
      fn: () => state.render(rangeTemplate, "tpl"),
    },
    { group: "render (50 keys)", name: "raw better-sqlite3 + replace", role: "raw", fn: rawRender },
    ...(postgres?.cases ?? []),
  ];
  try {
    // The PostgreSQL cases take 30-300 ms per call: a few calls per round keep the run short.
    await runSuite("state", cases, { minIterations: 5 });
  } finally {
    await state.close();
    await unlogged.close();
    raw.close();
    await keyv.disconnect();
    await postgres?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
