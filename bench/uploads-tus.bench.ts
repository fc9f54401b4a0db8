import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "@tus/file-store";
import { Server as TusServer } from "@tus/server";
import { Upload } from "tus-js-client";
import { createServer, type StoreroomServer } from "../src/server/index.js";
import { openSqlite } from "../src/sql/index.js";
import { ClaimStore } from "../src/uploads/index.js";

/**
 * tus uploads of 100 MB to the filesystem: storeroom's tus endpoint vs its own part protocol
 * vs @tus/server with @tus/file-store, all driven by tus-js-client (the part protocol by
 * fetch) with the same chunk size; and a 1 MiB Range download of a 1 GiB file vs the whole
 * file. Each round runs every case once, in rotated order; MB/s are medians over rounds and
 * ratios medians of per-round ratios. Rounds: BENCH_ROUNDS (default 3).
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

async function startStoreroom(dir: string): Promise<{ server: StoreroomServer; base: string }> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens: [{ token: TOKEN, orgId: "bench" }] }));
  const server = await createServer({
    dataDir: dir,
    port: 0,
    inspector: false,
    uploads: { maxUploadSize: 2 * 1024 ** 3 },
  });
  return { server, base: await server.listen() };
}

async function startTusPeer(dir: string): Promise<{ http: Server; endpoint: string }> {
  const tus = new TusServer({ path: "/files", datastore: new FileStore({ directory: dir }) });
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

export default async function tusBench(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const root = mkdtempSync(join(tmpdir(), "storeroom-bench-tus-"));
  const { server, base } = await startStoreroom(join(root, "storeroom"));
  const peer = await startTusPeer(join(root, "tus-peer"));
  const data = randomBytes(SIZE);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const cases: [string, () => Promise<void>][] = [
    ["storeroom tus", () => tusUpload(`${base}/v1/tus/`, data, auth)],
    ["storeroom part protocol", () => ownProtocol(base, data)],
    ["@tus/server + @tus/file-store", () => tusUpload(peer.endpoint, data, {})],
  ];
  const mbps = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  const ratios = { vsPeer: [] as number[], vsOwn: [] as number[] };
  const key = "priv/2026/01/01/big-1gib.bin";
  const latency = { range: [] as number[], full: [] as number[] };
  try {
    await sparseObject(join(root, "storeroom"), key, base);
    for (let round = 0; round < rounds; round++) {
      const order = cases.map((_, i) => cases[(i + round) % cases.length] as [string, () => Promise<void>]);
      const seen = new Map<string, number>();
      for (const [name, run] of order) {
        const started = performance.now();
        await run();
        const rate = SIZE / MB / ((performance.now() - started) / 1000);
        mbps.get(name)?.push(rate);
        seen.set(name, rate);
      }
      ratios.vsPeer.push((seen.get("storeroom tus") ?? 0) / (seen.get("@tus/server + @tus/file-store") ?? 1));
      ratios.vsOwn.push((seen.get("storeroom tus") ?? 0) / (seen.get("storeroom part protocol") ?? 1));
      for (const kind of round % 2 === 0 ? (["range", "full"] as const) : (["full", "range"] as const)) {
        const started = performance.now();
        const bytes = await download(`${base}/v1/files/${key}`, {
          ...auth,
          ...(kind === "range" ? { range: `bytes=${512 * 1024 ** 2}-${513 * 1024 ** 2 - 1}` } : {}),
        });
        latency[kind].push(performance.now() - started);
        if (bytes !== (kind === "range" ? 1024 ** 2 : 1024 ** 3)) throw new Error(`${kind}: ${bytes} bytes`);
      }
    }
    const result = {
      suite: "uploads-tus",
      rounds,
      uploadMBps: Object.fromEntries([...mbps].map(([name, xs]) => [name, Number(median(xs).toFixed(1))])),
      tusVsPeer: Number(median(ratios.vsPeer).toFixed(2)),
      tusVsOwnProtocol: Number(median(ratios.vsOwn).toFixed(2)),
      rangeMs: Number(median(latency.range).toFixed(2)),
      fullMs: Number(median(latency.full).toFixed(1)),
    };
    console.table(result.uploadMBps);
    console.log(JSON.stringify(result));
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL(`./results/uploads-tus-${Date.now()}.json`, import.meta.url),
      JSON.stringify(result, null, 2),
    );
  } finally {
    await server.close();
    await new Promise<void>((r) => peer.http.close(() => r()));
    rmSync(root, { recursive: true, force: true });
  }
}
