import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import { FileObjectStore } from "../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../src/objects/memory-object-store.js";
import type { ObjectStore } from "../src/objects/object-store.js";
import { restoreTenant, TenantKey, TenantStore, type TenantStoreOptions } from "../src/tenants/index.js";
import { writeSnapshotFile } from "../src/tenants/snapshot-file.js";
import { type BaselineBuild, buildBaseline } from "./baseline-build.js";
import { type BenchCase, runSuite } from "./harness.js";

/**
 * bench/tenants: warm paths (tinybench, against better-sqlite3 on the same file), then, timed
 * by hand, what replication costs: bytes uploaded per single-row write on a 5 MB and a 100 MB
 * tenant (against the whole database the earlier checkpoints uploaded), hydration and
 * point-in-time restore of a 100 MB tenant with 1,000 segments (against streaming one object
 * of the same size to a file, and against the single-object implementation before replication,
 * built from `TENANTS_BASELINE`, default `c8129ab^`; `none` skips it). Writes
 * bench/results/tenants.json and tenants-replication.json.
 */

const MB = 1024 * 1024;
const quiet: Partial<TenantStoreOptions> = { idleTtlMs: 0, syncIntervalMs: 60_000 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Warm paths through tinybench: an LRU hit plus a point read, against opening the file directly. */
async function warmCases(dir: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const store = await TenantStore.open({
    objectStore: new MemoryObjectStore(),
    cacheRoot: join(dir, "warm"),
    ...quiet,
  });
  const key = TenantKey.user("bench", "warm");
  await store.withTenant(key, async (db) => {
    await db.run("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
    await db.transaction(async (tx) => {
      for (let i = 0; i < 1000; i++) await tx.run("INSERT INTO kv VALUES ($1, $2)", [`k${i}`, "x".repeat(100)]);
    });
  });
  const view = await store.get(key);
  // The direct comparison gets its own copy of the same file, so the two never share locks.
  const rawPath = join(dir, "raw.db");
  await view.run("VACUUM INTO $1", [rawPath]);
  new BetterSqlite3(rawPath).pragma("journal_mode = WAL");
  const rawOpen = new BetterSqlite3(rawPath);
  const rawGet = rawOpen.prepare("SELECT v FROM kv WHERE k = ?");
  let i = 0;
  const next = (): string => `k${i++ % 1000}`;
  const cases: BenchCase[] = [
    {
      name: "better-sqlite3: open file + GET + close (raw)",
      group: "warm get + point GET",
      role: "raw",
      fn: () => {
        const db = new BetterSqlite3(rawPath);
        db.prepare("SELECT v FROM kv WHERE k = ?").get(next());
        db.close();
      },
    },
    {
      name: "storeroom tenants.get(key) (LRU hit) + db.get",
      group: "warm get + point GET",
      role: "ours",
      fn: async () => {
        await (await store.get(key)).get("SELECT v FROM kv WHERE k = $1", [next()]);
      },
    },
    {
      name: "better-sqlite3 prepared get, open handle (raw)",
      group: "point GET on an open tenant",
      role: "raw",
      fn: () => rawGet.get(next()),
    },
    {
      name: "storeroom TenantDatabase.get (leased per call)",
      group: "point GET on an open tenant",
      role: "ours",
      fn: () => view.get("SELECT v FROM kv WHERE k = $1", [next()]),
    },
  ];
  return {
    cases,
    close: async () => {
      rawOpen.close();
      await store.close();
    },
  };
}

/**
 * A database file of about `mb` MB (rows of 1,000 hex characters of random bytes: they
 * compress about 2:1, like application data), uploaded in the layout before replication, so
 * the first `get` publishes it as snapshot 0 of a manifest.
 */
async function seedOldLayout(objects: ObjectStore, dir: string, key: TenantKey, mb: number): Promise<number> {
  const path = join(dir, `seed-${key.userId}.db`);
  const db = new BetterSqlite3(path);
  db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  const insert = db.prepare("INSERT INTO notes (body) VALUES (?)");
  db.transaction(() => {
    for (let i = 0; i < mb * 920; i++) insert.run(randomBytes(500).toString("hex"));
  })();
  db.close();
  const size = statSync(path).size;
  await objects.put(key.objectKey(), await readFile(path));
  rmSync(path);
  return size;
}

interface BytesRow {
  tenant: string;
  writes: number;
  "segments+manifest+packs per write": string;
  "snapshot bytes (compressed)": string;
  "snapshot share per write": string;
  "total per write": string;
  "before: whole database per checkpoint (100 writes)": string;
  ratio: string;
}

/**
 * Single-row writes, each published on its own (sync durability: the worst case, no group
 * commit), and the bytes the object store received. The snapshot share is measured where a
 * snapshot happened within the run and otherwise computed from one snapshot's size and the
 * segment bytes that trigger the next (`snapshotFraction` of the database size).
 */
async function bytesPerWrite(dir: string, mb: number, writes: number): Promise<BytesRow> {
  const objects = new MemoryObjectStore();
  const key = TenantKey.user("bench", `bytes-${mb}`);
  const dbBytes = await seedOldLayout(objects, dir, key, mb);
  const store = await TenantStore.open({
    objectStore: objects,
    cacheRoot: join(dir, `bytes-${mb}`),
    durability: "sync",
    ...quiet,
  });
  const db = await store.get(key); // migration: snapshot 0 of the seeded file
  const before = { ...store.stats.replication };
  for (let i = 0; i < writes; i++) {
    await db.run("INSERT INTO notes (body) VALUES ($1)", [`write ${i} ${"payload ".repeat(12)}`]);
  }
  const after = store.stats.replication;
  const shipped =
    after.segmentBytes -
    before.segmentBytes +
    (after.manifestBytes - before.manifestBytes) +
    (after.packBytes - before.packBytes);
  const perWrite = shipped / writes;
  // One snapshot of the tenant as it is now: its compressed size sets the amortised share.
  const snapshot = join(dir, `snap-${mb}.gz`);
  const info = await writeSnapshotFile(key.localPath(store.cacheRoot), undefined, null, snapshot);
  await store.close();
  rmSync(snapshot, { force: true });
  const segmentPerWrite = (after.segmentBytes - before.segmentBytes) / writes;
  const writesPerSnapshot = (0.5 * dbBytes) / segmentPerWrite;
  const share = info.bytes / writesPerSnapshot;
  const total = perWrite + share;
  const old = dbBytes / 100;
  return {
    tenant: `${(dbBytes / MB).toFixed(1)} MB`,
    writes,
    "segments+manifest+packs per write": `${(perWrite / 1024).toFixed(2)} KiB`,
    "snapshot bytes (compressed)": `${(info.bytes / MB).toFixed(2)} MB every ${Math.round(writesPerSnapshot)} writes`,
    "snapshot share per write": `${(share / 1024).toFixed(2)} KiB`,
    "total per write": `${(total / 1024).toFixed(2)} KiB`,
    "before: whole database per checkpoint (100 writes)": `${(old / 1024).toFixed(1)} KiB`,
    ratio: `${(total / old).toFixed(4)}x`,
  };
}

/**
 * The single-object implementation's cold `get` + first read of the database `file`, stored
 * as that implementation's one object per tenant in a file store of its own under `root`.
 */
async function hydrateBefore(baseline: BaselineBuild, file: string, root: string): Promise<number> {
  const objects = await import(pathToFileURL(join(baseline.dist, "objects", "file-object-store.js")).href);
  const tenants = await import(pathToFileURL(join(baseline.dist, "tenants", "index.js")).href);
  const store = new objects.FileObjectStore({ root: join(root, "objects") });
  const key = tenants.TenantKey.user("bench", "before");
  await store.put(key.objectKey(), createReadStream(file), { contentLength: statSync(file).size });
  const before = new tenants.TenantStore({ objectStore: store, cacheRoot: join(root, "cache"), idleTtlMs: 0 });
  const t = performance.now();
  await (await before.get(key)).get("SELECT count(*) FROM notes");
  const ms = performance.now() - t;
  await before.close();
  await store.close?.();
  rmSync(root, { recursive: true, force: true });
  return ms;
}

interface RestoreRow {
  backend: string;
  tenant: string;
  segments: number;
  "raw: stream one object of that size to a file, open, first read (ms)": number;
  "hydrate: get + first read (ms)": number;
  "restore at the last transaction (ms)": number;
  "restore mid-history (ms)": number;
  "hydrate / raw": string;
}

/** A 100 MB tenant with `segments` single-write segments; cold hydrate and restores against a raw object copy. */
async function restoreTimes(
  dir: string,
  name: string,
  objects: ObjectStore,
  mb: number,
  segments: number,
  baseline: BaselineBuild | undefined,
): Promise<RestoreRow> {
  const key = TenantKey.user("bench", `restore-${mb}`);
  const dbBytes = await seedOldLayout(objects, dir, key, mb);
  const writer = await TenantStore.open({
    objectStore: objects,
    cacheRoot: join(dir, `restore-writer-${name.length}`),
    durability: "sync",
    ...quiet,
  });
  const db = await writer.get(key);
  for (let i = 0; i < segments; i++) await db.run("INSERT INTO notes (body) VALUES ($1)", [`w${i}`]);
  const txid = (await writer.inspect(key)).replica?.txid ?? 0;
  await writer.close();
  // The comparison: the database as one object, streamed to a file and opened (what hydrating
  // the single-object layout cost: the earlier implementation added fsync and checks to this).
  const rawKey = "bench/raw-object";
  const snapshotFile = join(dir, "raw-source.db");
  await restoreTenant(objects, key, txid, snapshotFile);
  await objects.put(rawKey, createReadStream(snapshotFile), { contentLength: statSync(snapshotFile).size });
  const raw: number[] = [];
  const before: number[] = [];
  const hydrate: number[] = [];
  const last: number[] = [];
  const mid: number[] = [];
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    const object = await objects.get(rawKey);
    await pipeline(object?.body as NodeJS.ReadableStream, createWriteStream(join(dir, `raw-${r}.db`)));
    // Same first read as the hydrate below (on a copy of the tenant's last snapshot image).
    const rawDb = new BetterSqlite3(join(dir, `raw-${r}.db`));
    rawDb.prepare("SELECT count(*) FROM notes").get();
    rawDb.close();
    raw.push(performance.now() - t);
    if (baseline !== undefined) before.push(await hydrateBefore(baseline, snapshotFile, join(dir, `before-${r}`)));
    const reader = await TenantStore.open({
      objectStore: objects,
      cacheRoot: join(dir, `reader-${name.length}-${r}`),
      ...quiet,
    });
    t = performance.now();
    await (await reader.get(key)).get("SELECT count(*) FROM notes");
    hydrate.push(performance.now() - t);
    await reader.close();
    t = performance.now();
    await restoreTenant(objects, key, txid, join(dir, `last-${name.length}-${r}.db`));
    last.push(performance.now() - t);
    t = performance.now();
    await restoreTenant(objects, key, Math.floor(txid / 2), join(dir, `mid-${name.length}-${r}.db`));
    mid.push(performance.now() - t);
    for (const f of [`raw-${r}.db`, `last-${name.length}-${r}.db`, `mid-${name.length}-${r}.db`])
      rmSync(join(dir, f), { force: true });
  }
  rmSync(snapshotFile, { force: true });
  return {
    backend: name,
    tenant: `${(dbBytes / MB).toFixed(1)} MB`,
    segments,
    "raw: stream one object of that size to a file, open, first read (ms)": Math.round(median(raw)),
    "hydrate: get + first read (ms)": Math.round(median(hydrate)),
    "restore at the last transaction (ms)": Math.round(median(last)),
    "restore mid-history (ms)": Math.round(median(mid)),
    "hydrate / raw": `${(median(hydrate) / median(raw)).toFixed(2)}x`,
    ...(baseline === undefined
      ? {}
      : {
          [`before replication (${baseline.sha.slice(0, 7)}): get + first read (ms)`]: Math.round(median(before)),
          "hydrate / before": `${(median(hydrate) / median(before)).toFixed(2)}x`,
        }),
  };
}

export default async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-tenants-"));
  const file = new FileObjectStore({ root: join(dir, "objects") });
  try {
    const warm = await warmCases(dir);
    await runSuite("tenants", warm.cases);
    await warm.close();
    const bytes = [await bytesPerWrite(dir, 5, 2000), await bytesPerWrite(dir, 100, 1000)];
    console.log("\n## tenants: bytes uploaded per single-row write (each published on its own)");
    console.table(bytes);
    const rev = process.env.TENANTS_BASELINE ?? "c8129ab^";
    const baseline = rev === "none" ? undefined : buildBaseline(rev, "tenants/index.js");
    const restores = [await restoreTimes(dir, "FileObjectStore", file, 100, 1000, baseline)];
    console.log("\n## tenants: hydrate and restore of a 100 MB tenant with 1,000 segments");
    console.table(restores);
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL("./results/tenants-replication.json", import.meta.url),
      `${JSON.stringify({ suite: "tenants-replication", date: new Date().toISOString(), node: process.version, bytes, restores }, null, 2)}\n`,
    );
  } finally {
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
