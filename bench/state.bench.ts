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
    { group: "getAll (10k keys)", name: "storeroom StateStore.getAll", role: "ours", fn: () => state.getAll("big") },
    { group: "getAll (10k keys)", name: "raw better-sqlite3", role: "raw", fn: () => rawAll.all("big", Date.now()) },
    {
      group: "render (50 keys)",
      name: "storeroom StateStore.render",
      role: "ours",
      fn: () => state.render(template, "tpl"),
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
