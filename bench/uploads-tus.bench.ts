import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "@tus/file-store";
import { S3Store } from "@tus/s3-store";
import { type DataStore, Server as TusServer } from "@tus/server";
import { Upload } from "tus-js-client";
import { type ObjectStore, S3ObjectStore } from "../src/objects/index.js";
import { createServer, type StoreroomServer } from "../src/server/index.js";
import { openSqlite } from "../src/sql/index.js";
import { ClaimStore } from "../src/uploads/index.js";
import { startProxiedS3rver } from "../test/support/s3rver.js";

/**
 * tus uploads of 100 MB, on the filesystem and on S3 (s3rver behind the test proxy):
 * storeroom's tus endpoint vs its own part protocol vs @tus/server with @tus/file-store /
 * @tus/s3-store, all driven by tus-js-client (the part protocol by fetch) with the same chunk
 * size; and a 1 MiB Range download of a 1 GiB file vs the whole file. Each round runs every
 * case of a backend once, in rotated order; MB/s are medians over rounds and ratios medians of
 * per-round ratios. Rounds: BENCH_ROUNDS (default 3); BENCH_TUS_BACKENDS=file,s3 (default both).
 */
const MB = 1_000_000;
const SIZE = 100 * MB;
const CHUNK = 16 * 1024 * 1024;
const TOKEN = "bench-token-0123456789abcdef";

function tusUpload(endpoint: string, data: Buffer, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    new Upload(data, {
      endpoint,
      headers,
      chunkSize: CHUNK,
      metadata: { filename: "bench.bin", filetype: "application/octet-stream" },
      onError: reject,
      onSuccess: () => resolve(),
    }).start();
  });
}

async function ownProtocol(base: string, data: Buffer): Promise<void> {
  const headers = { authorization: `Bearer ${TOKEN}` };
  const init = (await (
    await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ filename: "bench.bin", size: data.length }),
    })
  ).json()) as { claimId: string; partSize: number; partCount: number };
  for (let n = 1; n <= init.partCount; n++) {
    const res = await fetch(`${base}/v1/uploads/${init.claimId}/parts/${n}`, {
      method: "PUT",
      headers,
      body: data.subarray((n - 1) * init.partSize, n * init.partSize),
    });
    if (!res.ok) throw new Error(`part ${n}: ${res.status}`);
    await res.arrayBuffer();
  }
  const done = await fetch(`${base}/v1/uploads/${init.claimId}/complete`, { method: "POST", headers });
  if (!done.ok) throw new Error(`complete: ${done.status}`);
}

async function startStoreroom(dir: string, objects?: ObjectStore): Promise<{ server: StoreroomServer; base: string }> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens: [{ token: TOKEN, orgId: "bench" }] }));
  const server = await createServer({
    dataDir: dir,
    port: 0,
    inspector: false,
    uploads: { maxUploadSize: 2 * 1024 ** 3 },
    ...(objects === undefined ? {} : { objects }),
  });
  return { server, base: await server.listen() };
}

async function startTusPeer(datastore: DataStore): Promise<{ http: Server; endpoint: string }> {
  const tus = new TusServer({ path: "/files", datastore });
  const http = createHttpServer((req, res) => void tus.handle(req, res));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  return { http, endpoint: `http://127.0.0.1:${(http.address() as AddressInfo).port}/files` };
}

/** Places a 1 GiB object under `key` without writing 1 GiB: a sparse file in the store's on-disk format. */
async function sparseObject(dataDir: string, key: string, base: string): Promise<void> {
  const db = await openSqlite(join(dataDir, "control.db"));
  const claims = new ClaimStore({ database: db });
  const id = `bench-${Date.now()}`;
  await claims.create({
    id,
    createdAt: Date.now(),
    createdBy: "bench/org",
    key,
    size: 1024 ** 3,
    contentType: "application/octet-stream",
    originalFilename: "big.bin",
    public: false,
    partSize: 4 * 1024 * 1024,
    partCount: 256,
    expiresAt: Date.now() + 3_600_000,
  });
  await claims.markUploaded(id);
  await db.close();
  // Let the store create the file and its folders, then replace it with a sparse one of the same layout.
  const { FileObjectStore } = await import("../src/objects/index.js");
  const store = new FileObjectStore({ root: join(dataDir, "objects") });
  await store.put(key, "x");
  await store.close();
  const path = findFile(join(dataDir, "objects", "objects"), key.split("/").at(-1) as string);
  const handle = await open(path, "w");
  const size = 1024 ** 3;
  await handle.truncate(size);
  const trailer = Buffer.from(JSON.stringify({ etag: "sparse1gib", lastModified: Date.now() }));
  const footer = Buffer.alloc(8);
  footer.writeUInt32BE(trailer.byteLength, 0);
  Buffer.from("SRO1").copy(footer, 4);
  await handle.write(Buffer.concat([trailer, footer]), 0, trailer.byteLength + 8, size);
  await handle.close();
  const head = await fetch(`${base}/v1/files/${key}`, {
    method: "HEAD",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  if (head.headers.get("content-length") !== String(size)) throw new Error("sparse object not served");
}

function findFile(dir: string, name: string): string {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = findFile(path, name);
      if (found !== "") return found;
    } else if (entry.name.startsWith(name)) return path;
  }
  return "";
}

async function download(url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { headers });
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) bytes += chunk.byteLength;
  return bytes;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface Backend {
  readonly name: string;
  readonly base: string;
  readonly peer: { http: Server; endpoint: string };
  close(): Promise<void>;
}

async function fileBackend(root: string): Promise<Backend & { server: StoreroomServer; dataDir: string }> {
  const dataDir = join(root, "storeroom");
  const { server, base } = await startStoreroom(dataDir);
  const peer = await startTusPeer(new FileStore({ directory: join(root, "tus-peer") }));
  return {
    name: "file",
    base,
    peer,
    server,
    dataDir,
    async close() {
      await server.close();
      await new Promise<void>((r) => peer.http.close(() => r()));
    },
  };
}

/** Both servers on one s3rver (behind the conditional proxy, as in the tests), with 16 MiB parts. */
async function s3Backend(root: string): Promise<Backend> {
  const s3 = await startProxiedS3rver();
  const objects = new S3ObjectStore({ ...s3.storeOptions, partSize: S3_PART });
  const { server, base } = await startStoreroom(join(root, "storeroom-s3"), objects);
  const peer = await startTusPeer(new S3Store({ partSize: S3_PART, s3ClientConfig: s3.storeOptions }));
  return {
    name: "s3",
    base,
    peer,
    async close() {
      await server.close();
      await objects.close();
      await new Promise<void>((r) => peer.http.close(() => r()));
      await s3.stop();
    },
  };
}

const S3_PART = 16 * 1024 * 1024;

export default async function tusBench(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const wanted = (process.env.BENCH_TUS_BACKENDS ?? "file,s3").split(",");
  const root = mkdtempSync(join(tmpdir(), "storeroom-bench-tus-"));
  const data = randomBytes(SIZE);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const backends: Backend[] = [];
  const mbps = new Map<string, number[]>();
  const ratios = new Map<string, number[]>();
  const push = (map: Map<string, number[]>, name: string, value: number) =>
    map.set(name, [...(map.get(name) ?? []), value]);
  const key = "priv/2026/01/01/big-1gib.bin";
  const latency = { range: [] as number[], full: [] as number[] };
  try {
    const file = wanted.includes("file") ? await fileBackend(root) : undefined;
    if (file) backends.push(file);
    if (wanted.includes("s3")) backends.push(await s3Backend(root));
    if (file) await sparseObject(file.dataDir, key, file.base);
    for (let round = 0; round < rounds; round++) {
      for (const backend of backends) {
        const cases: [string, () => Promise<void>][] = [
          ["storeroom tus", () => tusUpload(`${backend.base}/v1/tus/`, data, auth)],
          ["storeroom part protocol", () => ownProtocol(backend.base, data)],
          ["@tus/server", () => tusUpload(backend.peer.endpoint, data, {})],
        ];
        const order = cases.map((_, i) => cases[(i + round) % cases.length] as [string, () => Promise<void>]);
        const seen = new Map<string, number>();
        for (const [name, run] of order) {
          const started = performance.now();
          await run();
          const rate = SIZE / MB / ((performance.now() - started) / 1000);
          push(mbps, `${backend.name}: ${name}`, rate);
          seen.set(name, rate);
        }
        const tus = seen.get("storeroom tus") ?? 0;
        push(ratios, `${backend.name}: tus vs @tus/server`, tus / (seen.get("@tus/server") ?? 1));
        push(ratios, `${backend.name}: tus vs part protocol`, tus / (seen.get("storeroom part protocol") ?? 1));
      }
      if (!file) continue;
      for (const kind of round % 2 === 0 ? (["range", "full"] as const) : (["full", "range"] as const)) {
        const started = performance.now();
        const bytes = await download(`${file.base}/v1/files/${key}`, {
          ...auth,
          ...(kind === "range" ? { range: `bytes=${512 * 1024 ** 2}-${513 * 1024 ** 2 - 1}` } : {}),
        });
        latency[kind].push(performance.now() - started);
        if (bytes !== (kind === "range" ? 1024 ** 2 : 1024 ** 3)) throw new Error(`${kind}: ${bytes} bytes`);
      }
    }
    const table = (map: Map<string, number[]>, digits: number) =>
      Object.fromEntries([...map].map(([name, xs]) => [name, Number(median(xs).toFixed(digits))]));
    const result = {
      suite: "uploads-tus",
      rounds,
      loadAverage: loadavg().map((x) => Number(x.toFixed(1))),
      uploadMBps: table(mbps, 1),
      ratios: table(ratios, 2),
      ...(latency.range.length === 0
        ? {}
        : { rangeMs: Number(median(latency.range).toFixed(2)), fullMs: Number(median(latency.full).toFixed(1)) }),
    };
    console.table(result.uploadMBps);
    console.table(result.ratios);
    console.log(JSON.stringify(result));
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL(`./results/uploads-tus-${Date.now()}.json`, import.meta.url),
      JSON.stringify(result, null, 2),
    );
  } finally {
    for (const backend of backends) await backend.close();
    rmSync(root, { recursive: true, force: true });
  }
}
