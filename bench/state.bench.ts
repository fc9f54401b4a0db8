import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import BetterSqlite3 from "better-sqlite3";
import Keyv from "keyv";
import { StateStore } from "../src/state/index.js";
import { type BenchCase, runSuite } from "./harness.js";

const KEYS = 1_000;
const BIG_GROUP = 10_000;
const RENDER_KEYS = 50;
const BATCH = 100;
const value = "v".repeat(64);

const UPSERT =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES (?, ?, ?, ?) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = excluded.expires_at";

/**
 * state: StateStore (SQLite file) vs raw better-sqlite3 running the same statements on the
 * same schema vs Keyv + @keyv/sqlite, each on its own file in one temp directory.
 */
export default async function stateBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-state-bench-"));
  const state = await StateStore.open({ databasePath: join(dir, "ours.db") });
  const raw = new BetterSqlite3(join(dir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec(`CREATE TABLE entries (group_name TEXT NOT NULL, entry_key TEXT NOT NULL, entry_value TEXT NOT NULL,
    expires_at INTEGER, PRIMARY KEY (group_name, entry_key));
    CREATE INDEX entries_expires_at ON entries (expires_at) WHERE expires_at IS NOT NULL`);
  const keyv = new Keyv({ store: new KeyvSqlite(`sqlite://${join(dir, "keyv.db")}`) });

  const rawUpsert = raw.prepare(UPSERT);
  const rawGet = raw.prepare("SELECT entry_value, expires_at FROM entries WHERE group_name = ? AND entry_key = ?");
  const rawAll = raw.prepare(
    "SELECT entry_key, entry_value FROM entries WHERE group_name = ? AND (expires_at IS NULL OR expires_at > ?)",
  );

  // Seed identical data everywhere.
  await state.transaction(async (tx) => {
    for (let i = 0; i < KEYS; i++) await tx.set("bench", `k${i}`, value);
    for (let i = 0; i < BIG_GROUP; i++) await tx.set("big", `k${i}`, value);
    for (let i = 0; i < RENDER_KEYS; i++) await tx.set("tpl", `k${i}`, `value${i}`);
  });
  raw.transaction(() => {
    for (let i = 0; i < KEYS; i++) rawUpsert.run("bench", `k${i}`, value, null);
    for (let i = 0; i < BIG_GROUP; i++) rawUpsert.run("big", `k${i}`, value, null);
    for (let i = 0; i < RENDER_KEYS; i++) rawUpsert.run("tpl", `k${i}`, `value${i}`, null);
  })();
  for (let i = 0; i < KEYS; i++) await keyv.set(`bench:k${i}`, value);

  let n = 0;
  const nextKey = () => {
    n = (n + 7919) % KEYS;
    return `k${n}`;
  };
  const template = Array.from({ length: RENDER_KEYS }, (_, i) => `k${i}={{ .k${i} }}`).join("\n");
  // The same output written as a Go template loop over the group (key order is k0, k1, k10, ...).
  const rangeTemplate = "{{ range $k, $v := . }}{{ $k }}={{ $v }}\n{{ end }}";

  // Versioned writes: the raw driver doing what a conditional set does (read the version,
  // take the next store version, upsert, append to the change log) in one transaction.
  raw.exec(`ALTER TABLE entries ADD COLUMN entry_version INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE state_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
    INSERT INTO state_version VALUES (1, 1);
    CREATE TABLE state_changes (version INTEGER PRIMARY KEY, change_type TEXT NOT NULL, group_name TEXT NOT NULL,
      entry_key TEXT NOT NULL, entry_value TEXT, changed_at INTEGER NOT NULL)`);
  const rawVersion = raw.prepare(
    "SELECT entry_version, expires_at FROM entries WHERE group_name = ? AND entry_key = ?",
  );
  const rawBump = raw.prepare("UPDATE state_version SET version = version + ? WHERE id = 1 RETURNING version");
  const rawVersionedUpsert = raw.prepare(
    "INSERT INTO entries (group_name, entry_key, entry_value, expires_at, entry_version) VALUES (?, ?, ?, NULL, ?) " +
      "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, " +
      "expires_at = excluded.expires_at, entry_version = excluded.entry_version",
  );
  const rawChange = raw.prepare(
    "INSERT INTO state_changes (version, change_type, group_name, entry_key, entry_value, changed_at) VALUES (?, 'set', ?, ?, ?, ?)",
  );
  const rawCas = raw.transaction((key: string, expected: number) => {
    const version = (rawBump.get(1) as { version: number }).version;
    const row = rawVersion.get("cas", key) as { entry_version: number } | undefined;
    if ((row?.entry_version ?? 0) !== expected) throw new Error("conflict");
    rawVersionedUpsert.run("cas", key, value, version);
    rawChange.run(version, "cas", key, value, Date.now());
    return version;
  });
  const casKeys = 100;
  const ourVersions = new Map<string, number>();
  const rawVersions = new Map<string, number>();
  for (let i = 0; i < casKeys; i++) {
    ourVersions.set(`c${i}`, await state.set("cas", `c${i}`, value));
    rawVersions.set(`c${i}`, rawCas(`c${i}`, 0));
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

  const cases: BenchCase[] = [
    ...trio("set", {
      ours: async () => {
        for (let i = 0; i < BATCH; i++) await state.set("bench", nextKey(), value);
      },
      raw: () => {
        for (let i = 0; i < BATCH; i++) rawUpsert.run("bench", nextKey(), value, null);
      },
      peer: async () => {
        for (let i = 0; i < BATCH; i++) await keyv.set(`bench:${nextKey()}`, value);
      },
    }),
    ...trio("get", {
      ours: async () => {
        for (let i = 0; i < BATCH; i++) await state.get("bench", nextKey());
      },
      raw: () => {
        for (let i = 0; i < BATCH; i++) {
          const row = rawGet.get("bench", nextKey()) as { expires_at: number | null } | undefined;
          if (row === undefined || (row.expires_at !== null && row.expires_at <= Date.now())) throw new Error("miss");
        }
      },
      peer: async () => {
        for (let i = 0; i < BATCH; i++) await keyv.get(`bench:${nextKey()}`);
      },
    }),
    ...trio("setWithTtl", {
      ours: async () => {
        for (let i = 0; i < BATCH; i++) await state.setWithTtl("bench", nextKey(), value, 3_600_000);
      },
      raw: () => {
        for (let i = 0; i < BATCH; i++) rawUpsert.run("bench", nextKey(), value, Date.now() + 3_600_000);
      },
      peer: async () => {
        for (let i = 0; i < BATCH; i++) await keyv.set(`bench:${nextKey()}`, value, 3_600_000);
      },
    }),
    {
      group: "versioned writes (per key)",
      name: "storeroom set",
      role: "ours",
      batch: BATCH,
      fn: async () => {
        for (let i = 0; i < BATCH; i++) {
          const key = nextCas();
          ourVersions.set(key, await state.set("cas", key, value));
        }
      },
    },
    {
      group: "versioned writes (per key)",
      name: "storeroom set with ifVersion",
      role: "ours",
      batch: BATCH,
      vs: "storeroom set",
      fn: async () => {
        for (let i = 0; i < BATCH; i++) {
          const key = nextCas();
          ourVersions.set(key, await state.set("cas", key, value, { ifVersion: ourVersions.get(key) as number }));
        }
      },
    },
    {
      group: "versioned writes (per key)",
      name: "storeroom batch of 10 sets",
      role: "ours",
      batch: BATCH,
      vs: "storeroom set",
      fn: async () => {
        for (let i = 0; i < BATCH / 10; i++) {
          const ops = Array.from({ length: 10 }, () => ({ type: "set" as const, group: "cas", key: nextCas(), value }));
          const { versions } = await state.batch(ops);
          ops.forEach((o, j) => {
            ourVersions.set(o.key, versions[j] as number);
          });
        }
      },
    },
    {
      group: "versioned writes (per key)",
      name: "raw better-sqlite3, conditional set statements",
      role: "raw",
      batch: BATCH,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          const key = nextCas();
          rawVersions.set(key, rawCas(key, rawVersions.get(key) as number));
        }
      },
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
  ];
  try {
    await runSuite("state", cases);
  } finally {
    await state.close();
    raw.close();
    await keyv.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

function trio(group: string, fns: { ours: () => unknown; raw: () => unknown; peer: () => unknown }): BenchCase[] {
  return [
    { group, name: `storeroom StateStore.${group}`, role: "ours", batch: BATCH, fn: fns.ours },
    { group, name: "raw better-sqlite3", role: "raw", batch: BATCH, fn: fns.raw },
    { group, name: "keyv + @keyv/sqlite", role: "peer", batch: BATCH, fn: fns.peer },
  ];
}
