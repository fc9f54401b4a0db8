import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import KeyvPostgres from "@keyv/postgres";
import KeyvSqlite from "@keyv/sqlite";
import BetterSqlite3 from "better-sqlite3";
import Keyv from "keyv";
import pg from "pg";
import { KeyvStoreroom } from "../src/keyv/index.js";
import { openPostgres, openSqlite } from "../src/sql/index.js";
import { StateStore } from "../src/state/index.js";
import { type BenchCase, runSuite } from "./harness.js";

const KEYS = 1000;
const BATCH = 20;
const value = { user: "ada", roles: ["admin"], note: "x".repeat(100) };

function keyCycle(): () => string {
  let i = 0;
  return () => {
    i = (i + 7) % KEYS;
    return `k${i}`;
  };
}

/** Keyv over our adapter beside Keyv over the official adapter for the same database, and the bare driver. */
function keyvCases(
  engine: string,
  ours: Keyv,
  peer: Keyv,
  peerName: string,
  raw: { get: (k: string) => Promise<unknown> | unknown; set: (k: string, v: string) => Promise<unknown> | unknown },
): BenchCase[] {
  const key = keyCycle();
  const serialized = JSON.stringify({ value, expires: null });
  const batch = (op: () => Promise<unknown> | unknown) => async () => {
    for (let n = 0; n < BATCH; n++) await op();
  };
  return [
    { group: `keyv get (${engine})`, name: "raw driver", role: "raw", batch: BATCH, fn: batch(() => raw.get(key())) },
    { group: `keyv get (${engine})`, name: peerName, role: "peer", batch: BATCH, fn: batch(() => peer.get(key())) },
    {
      group: `keyv get (${engine})`,
      name: "keyv + storeroom",
      role: "ours",
      batch: BATCH,
      fn: batch(() => ours.get(key())),
    },
    {
      group: `keyv set (${engine})`,
      name: "raw driver",
      role: "raw",
      batch: BATCH,
      fn: batch(() => raw.set(key(), serialized)),
    },
    {
      group: `keyv set (${engine})`,
      name: peerName,
      role: "peer",
      batch: BATCH,
      fn: batch(() => peer.set(key(), value)),
    },
    {
      group: `keyv set (${engine})`,
      name: "keyv + storeroom",
      role: "ours",
      batch: BATCH,
      fn: batch(() => ours.set(key(), value)),
    },
  ];
}

async function fill(...stores: Keyv[]): Promise<void> {
  for (const keyv of stores) for (let i = 0; i < KEYS; i++) await keyv.set(`k${i}`, value);
}

export default async function keyvAdaptersBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-keyv-bench-"));
  const closers: (() => Promise<unknown> | unknown)[] = [];
  try {
    // SQLite: WAL with synchronous=NORMAL for all three, so only the code paths differ.
    const db = await openSqlite(join(dir, "ours.db"));
    const state = await StateStore.open({ database: db });
    closers.push(
      () => state.close(),
      () => db.close(),
    );
    const peerStore = new KeyvSqlite({ uri: `sqlite://${join(dir, "peer.db")}` });
    await peerStore.query("PRAGMA journal_mode = WAL");
    await peerStore.query("PRAGMA synchronous = NORMAL");
    const rawDb = new BetterSqlite3(join(dir, "raw.db"));
    rawDb.pragma("journal_mode = WAL");
    rawDb.pragma("synchronous = NORMAL");
    rawDb.exec("CREATE TABLE keyv (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    const rawGet = rawDb.prepare("SELECT value FROM keyv WHERE key = ?");
    const rawSet = rawDb.prepare(
      "INSERT INTO keyv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    closers.push(() => rawDb.close());
    const ours = new Keyv({ store: new KeyvStoreroom({ state }), namespace: "bench" });
    const peer = new Keyv({ store: peerStore, namespace: "bench" });
    await fill(ours, peer);
    for (let i = 0; i < KEYS; i++) rawSet.run(`bench:k${i}`, JSON.stringify({ value }));
    const cases = keyvCases(`sqlite, storeroom on ${db.engine}`, ours, peer, "keyv + @keyv/sqlite (sqlite3)", {
      get: (k) => rawGet.get(`bench:${k}`),
      set: (k, v) => rawSet.run(`bench:${k}`, v),
    });
    const url = process.env.POSTGRES_URL;
    if (url) {
      const pgDb = await openPostgres(url, { schema: "keyv_bench_ours", max: 4 });
      const pgState = await StateStore.open({ database: pgDb });
      const pgPeerStore = new KeyvPostgres({ uri: url, schema: "keyv_bench_peer", max: 4 });
      const pool = new pg.Pool({ connectionString: url, max: 4 });
      await pool.query(
        "DROP TABLE IF EXISTS keyv_bench_raw; CREATE TABLE keyv_bench_raw (key TEXT PRIMARY KEY, value TEXT)",
      );
      const pgOurs = new Keyv({ store: new KeyvStoreroom({ state: pgState }), namespace: "bench" });
      const pgPeer = new Keyv({ store: pgPeerStore, namespace: "bench" });
      await pgOurs.clear();
      await pgPeer.clear();
      await fill(pgOurs, pgPeer);
      await pool.query("INSERT INTO keyv_bench_raw SELECT 'bench:k' || g, $1 FROM generate_series(0, $2) g", [
        JSON.stringify({ value }),
        KEYS - 1,
      ]);
      closers.push(
        () => pgState.close(),
        () => pgDb.close(),
        () => pgPeer.disconnect(),
        () => pool.query("DROP TABLE IF EXISTS keyv_bench_raw").then(() => pool.end()),
      );
      cases.push(
        ...keyvCases("postgres", pgOurs, pgPeer, "keyv + @keyv/postgres (pg)", {
          get: (k) =>
            pool.query({ name: "g", text: "SELECT value FROM keyv_bench_raw WHERE key = $1", values: [`bench:${k}`] }),
          set: (k, v) =>
            pool.query({
              name: "s",
              text: "INSERT INTO keyv_bench_raw (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              values: [`bench:${k}`, v],
            }),
        }),
      );
    } else {
      console.warn("POSTGRES_URL is not set: PostgreSQL cases skipped");
    }
    await runSuite("keyv-adapters", cases);
  } finally {
    for (const close of closers.reverse()) await close();
    rmSync(dir, { recursive: true, force: true });
  }
}
