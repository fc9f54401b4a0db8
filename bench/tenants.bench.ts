import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import BetterSqlite3 from "better-sqlite3";
import { FileObjectStore } from "../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../src/objects/memory-object-store.js";
import type { ObjectStore } from "../src/objects/object-store.js";
import { S3ObjectStore } from "../src/objects/s3-object-store.js";
import { TenantKey, TenantStore } from "../src/tenants/index.js";
import { startProxiedS3rver } from "../test/support/s3rver.js";
import { type BenchCase, runSuite } from "./harness.js";

const MB = 1024 * 1024;
const quiet = { idleTtlMs: 0, checkpointIntervalMs: 0, checkpointWrites: Number.MAX_SAFE_INTEGER };

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return Number.NaN;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Warm paths through tinybench: an LRU hit plus a point read, against opening the file directly. */
async function warmCases(dir: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const store = new TenantStore({ objectStore: new MemoryObjectStore(), cacheRoot: join(dir, "warm"), ...quiet });
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
  // Same journal mode as the tenant (WAL readers need no file lock per statement).
  new BetterSqlite3(rawPath).pragma("journal_mode = WAL");
  const rawOpen = new BetterSqlite3(rawPath);
  const rawGet = rawOpen.prepare("SELECT v FROM kv WHERE k = ?");
  let i = 0;
  const next = (): string => `k${i++ % 1000}`;
  const cases: BenchCase[] = [
    {
      group: "warm get + point GET",
      name: "better-sqlite3: open file + GET + close",
      role: "raw",
      fn: () => {
        const db = new BetterSqlite3(rawPath);
        db.prepare("SELECT v FROM kv WHERE k = ?").get(next());
        db.close();
      },
    },
    {
      group: "warm get + point GET",
      name: "storeroom tenants.get (LRU hit) + GET",
      role: "ours",
      batch: 10,
      fn: async () => {
        for (let j = 0; j < 10; j++) await (await store.get(key)).get("SELECT v FROM kv WHERE k = $1", [next()]);
      },
    },
    {
      group: "point GET on an open tenant",
      name: "better-sqlite3 prepared get (open handle)",
      role: "raw",
      batch: 100,
      fn: () => {
        for (let j = 0; j < 100; j++) rawGet.get(next());
      },
    },
    {
      group: "point GET on an open tenant",
      name: "storeroom TenantDatabase.get (leased per call)",
      role: "ours",
      batch: 100,
      fn: async () => {
        for (let j = 0; j < 100; j++) await view.get("SELECT v FROM kv WHERE k = $1", [next()]);
      },
    },
    {
      group: "point GET on an open tenant",
      name: "storeroom withTenant + GET",
      role: "ours",
      batch: 10,
      fn: async () => {
        for (let j = 0; j < 10; j++)
          await store.withTenant(key, (db) => db.get("SELECT v FROM kv WHERE k = $1", [next()]));
      },
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

/** Builds a tenant database of about `mb` MB in object storage. */
async function seedTenant(objects: ObjectStore, cacheRoot: string, key: TenantKey, mb: number): Promise<number> {
  const store = new TenantStore({ objectStore: objects, cacheRoot, ...quiet });
  let bytes = 0;
  await store.withTenant(key, async (db) => {
    await db.run("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)");
    await db.transaction(async (tx) => {
      for (let i = 0; i < mb * 16; i++) await tx.run("INSERT INTO blobs (b) VALUES (randomblob(65536))");
    });
  });
  bytes = (await store.checkpoint(key)).bytes;
  await store.close();
  return bytes;
}

interface Row {
  measure: string;
  backend: string;
  size: string;
  median: string;
  throughput: string;
  runs: number;
}

/** Cold hydrates and checkpoints, timed by hand (a few runs each; tinybench would repeat 100 MB dozens of times). */
async function slowCases(dir: string, backends: { name: string; objects: ObjectStore }[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const { name, objects } of backends) {
    for (const mb of [1, 100]) {
      const key = TenantKey.user("bench", `cold-${mb}mb`);
      const bytes = await seedTenant(objects, join(dir, `seed-${name}-${mb}`), key, mb);
      const runs = mb === 1 ? 15 : 3;
      const hydrate: number[] = [];
      const checkpoint: number[] = [];
      const rawCopy: number[] = [];
      const store = new TenantStore({ objectStore: objects, cacheRoot: join(dir, `cold-${name}-${mb}`), ...quiet });
      // Raw and storeroom runs alternate, so both see the same page-cache and load conditions.
      for (let r = 0; r < runs; r++) {
        // The unsafe baseline: stream the object to a file and open it (no fsync, no header check, no CAS).
        let t = performance.now();
        const object = await objects.get(key.objectKey());
        const target = join(dir, `raw-${name.length}-${mb}-${r}.db`);
        await pipeline(object?.body as NodeJS.ReadableStream, createWriteStream(target));
        const raw = new BetterSqlite3(target);
        raw.prepare("SELECT count(*) FROM blobs").get();
        raw.close();
        rawCopy.push(performance.now() - t);
        rmSync(target, { force: true });
        t = performance.now();
        await (await store.get(key)).get("SELECT count(*) FROM blobs");
        hydrate.push(performance.now() - t);
        await store.markDirty(key);
        t = performance.now();
        await store.checkpoint(key);
        checkpoint.push(performance.now() - t);
        await store.evict(key);
      }
      await store.close();
      const size = `${(bytes / MB).toFixed(1)} MB`;
      const raw = median(rawCopy);
      rows.push({
        measure: "raw: get + write file + open + read",
        backend: name,
        size,
        median: `${raw.toFixed(1)} ms`,
        throughput: `${(bytes / MB / (raw / 1000)).toFixed(0)} MB/s`,
        runs,
      });
      const h = median(hydrate);
      const c = median(checkpoint);
      rows.push({
        measure: "cold hydrate (get + first read)",
        backend: name,
        size,
        median: `${h.toFixed(1)} ms`,
        throughput: `${(bytes / MB / (h / 1000)).toFixed(0)} MB/s`,
        runs,
      });
      rows.push({
        measure: "checkpoint (snapshot + upload)",
        backend: name,
        size,
        median: `${c.toFixed(1)} ms`,
        throughput: `${(c / (bytes / MB)).toFixed(2)} ms/MB`,
        runs,
      });
    }
  }
  return rows;
}

/** Churn: new tenants (one write each) through an LRU of 50, with memory and descriptors sampled. */
async function churn(dir: string, cache: string, tenants: number): Promise<Record<string, string | number>> {
  const store = new TenantStore({
    objectStore: new MemoryObjectStore(),
    cacheRoot: join(dir, "churn"),
    lruSize: 50,
    ...quiet,
  });
  const fdsBefore = openFds();
  let maxFds = fdsBefore;
  let maxRss = process.memoryUsage().rss;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < tenants) {
        const i = next++;
        await store.withTenant(TenantKey.user("churn", `t${i}`), async (db) => {
          await db.run("CREATE TABLE IF NOT EXISTS t (i INTEGER)");
          await db.run("INSERT INTO t VALUES ($1)", [i]);
        });
        if (i % 50 === 0) {
          maxFds = Math.max(maxFds, openFds());
          maxRss = Math.max(maxRss, process.memoryUsage().rss);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  return {
    cache,
    tenants,
    lruSize: 50,
    "tenants/s": Math.round(tenants / seconds),
    "max open fds (delta)": maxFds - fdsBefore,
    "max RSS MB": Math.round(maxRss / MB),
    "fds after close (delta)": openFds() - fdsBefore,
  };
}

export default async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-tenants-"));
  // s3rver lacks ListParts (used to verify multipart completion); the test proxy answers it as S3 does.
  const s3 = await startProxiedS3rver({ bucket: "bench" });
  const file = new FileObjectStore({ root: join(dir, "objects") });
  const s3store = new S3ObjectStore({ ...s3.storeOptions });
  try {
    const warm = await warmCases(dir);
    await runSuite("tenants", warm.cases);
    await warm.close();
    const slow = await slowCases(dir, [
      { name: "FileObjectStore", objects: file },
      { name: "S3ObjectStore on s3rver (via test proxy)", objects: s3store },
    ]);
    console.log("\n## tenants: cold hydrate and checkpoint");
    console.table(slow);
    const churned = [await churn(dir, "disk (os tmpdir)", 500)];
    if (existsSync("/dev/shm")) {
      const shm = mkdtempSync("/dev/shm/storeroom-bench-");
      try {
        churned.push(await churn(shm, "tmpfs (/dev/shm)", 2000));
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    }
    console.log("\n## tenants: churn (new tenant, one write, through an LRU of 50; 8 concurrent callers)");
    console.table(churned);
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL("./results/tenants-io.json", import.meta.url),
      `${JSON.stringify({ suite: "tenants-io", date: new Date().toISOString(), node: process.version, slow, churn: churned }, null, 2)}\n`,
    );
  } finally {
    await file.close();
    await s3store.close();
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
