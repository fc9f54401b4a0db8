import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Upload } from "tus-js-client";
import { afterEach, describe, expect, it } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { eventually } from "../bus/bus-fixtures.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, tokens } from "./server-fixture.js";

const child = fileURLToPath(new URL("./fixtures/server-child.mjs", import.meta.url));
const dist = fileURLToPath(new URL("../../dist/server/index.js", import.meta.url));
const MiB = 1024 * 1024;
const LEASE_MS = 1_000;
const tus = { "tus-resumable": "1.0.0" };
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

const dir = useTempDir("storeroom-tus-processes-");
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
});

/** A compiled server in a child process on `dataDir`, sharing `database` and `objects` with the others. */
function spawnServer(
  dataDir: string,
  database: string,
  objects: string,
): Promise<{ proc: ChildProcess; base: string }> {
  if (!existsSync(dist)) throw new Error("dist/server/index.js is missing: run `npm run build` (npm test does)");
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, "tokens.json"),
    JSON.stringify({ tokens: [{ token: tokens.ada, orgId: "acme", userId: "ada" }] }),
  );
  const proc = spawn(process.execPath, [child, dataDir, database, objects, String(LEASE_MS)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  procs.push(proc);
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve({ proc, base: m[1] as string });
    });
    proc.once("exit", (code) => reject(new Error(`server exited early (${code})`)));
  });
}

/** Where the processes of one test keep their shared control database and objects. */
function shared(name: string) {
  const root = join(dir, name);
  return { root, database: join(root, "control.db"), objects: join(root, "objects") };
}

/** The headers of a raw tus PATCH at `offset`. */
function patchHeaders(offset: number): Record<string, string> {
  return {
    ...tus,
    ...auth(tokens.ada),
    "content-type": "application/offset+octet-stream",
    "upload-offset": String(offset),
  };
}

async function head(url: string): Promise<number> {
  const res = await fetch(url, { method: "HEAD", headers: { ...tus, ...auth(tokens.ada) } });
  expect(res.status).toBe(200);
  return Number(res.headers.get("upload-offset"));
}

/**
 * Runs tus-js-client (1 MiB PATCHes) from wherever the upload stands until it has sent `killAt`
 * bytes, then calls `kill` and stops; resolves with the upload URL and the last offset a
 * server acknowledged, or `done` when it finished first.
 */
function uploadUntil(
  base: string,
  path: string | undefined,
  data: Buffer,
  killAt: number,
  kill: () => void,
): Promise<{ path: string; acked: number; done: boolean }> {
  return new Promise((resolve, reject) => {
    let acked = 0;
    let killed = false;
    const upload: Upload = new Upload(data, {
      endpoint: `${base}/v1/tus/`,
      ...(path === undefined ? {} : { uploadUrl: `${base}${path}` }),
      headers: auth(tokens.ada),
      chunkSize: MiB,
      retryDelays: null,
      metadata: { filename: "crash.bin", filetype: "application/octet-stream" },
      onProgress: (sent) => {
        if (killed || sent < killAt) return;
        killed = true;
        kill();
        resolve({ path: new URL(upload.url as string).pathname, acked, done: false });
        void upload.abort().catch(() => undefined);
      },
      onAfterResponse: (req, res) => {
        if (req.getMethod() === "PATCH" && res.getStatus() === 204) acked = Number(res.getHeader("Upload-Offset"));
      },
      onError: (err) => {
        if (!killed) reject(err);
      },
      onSuccess: () => resolve({ path: new URL(upload.url as string).pathname, acked: data.length, done: true }),
    });
    upload.start();
  });
}

describe("tus across server processes (compiled server in child processes)", () => {
  it("a server killed (SIGKILL) mid-PATCH loses no acknowledged byte; the client resumes after each restart and the file is exact", {
    timeout: 90_000,
  }, async () => {
    const { root, database, objects } = shared("crash");
    const data = randomBytes(10 * MiB + 12_345);
    const rounds = 4;
    let path: string | undefined;
    const offsets: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const server = await spawnServer(join(root, "data"), database, objects);
      if (path !== undefined) {
        // No acknowledged byte was lost, and nothing past what was sent appeared.
        const offset = await head(`${server.base}${path}`);
        expect(offset).toBeGreaterThanOrEqual(offsets.at(-1) ?? 0);
        offsets.push(offset);
      }
      const killAt = Math.floor((data.length * (round + 1)) / (rounds + 1)) + 300_000;
      const exited = new Promise((r) => server.proc.once("exit", r));
      const run = await uploadUntil(server.base, path, data, killAt, () => server.proc.kill("SIGKILL"));
      await exited;
      expect(run.done).toBe(false);
      path = run.path;
      offsets.push(run.acked);
    }
    const server = await spawnServer(join(root, "data"), database, objects);
    const resumedAt = await head(`${server.base}${path}`);
    expect(resumedAt).toBeGreaterThanOrEqual(offsets.at(-1) ?? 0);
    let fileKey: string | undefined;
    await new Promise<void>((resolve, reject) => {
      new Upload(data, {
        endpoint: `${server.base}/v1/tus/`,
        uploadUrl: `${server.base}${path}`,
        headers: auth(tokens.ada),
        chunkSize: MiB,
        onAfterResponse: (_req, res) => {
          fileKey = res.getHeader("Storeroom-File-Key") ?? fileKey;
        },
        onError: reject,
        onSuccess: () => resolve(),
      }).start();
    });
    // Every round made progress that survived its crash.
    expect(offsets.filter((o, i) => i > 0 && o > (offsets[i - 1] ?? 0)).length).toBeGreaterThanOrEqual(rounds - 1);
    const res = await fetch(`${server.base}/v1/files/${fileKey}`, { headers: auth(tokens.ada) });
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
  });

  it("two processes PATCHing one upload never both append: the second stops the first, which keeps what it received", {
    timeout: 60_000,
  }, async () => {
    const { root, database, objects } = shared("two");
    const [a, b] = await Promise.all([
      spawnServer(join(root, "a"), database, objects),
      spawnServer(join(root, "b"), database, objects),
    ]);
    const data = randomBytes(10 * MiB);
    const created = await fetch(`${a.base}/v1/tus/`, {
      method: "POST",
      headers: { ...tus, ...auth(tokens.ada), "upload-length": String(data.length) },
    });
    expect(created.status).toBe(201);
    const path = created.headers.get("location") as string;
    const claimId = path.split("/").at(-1) as string;

    // Process A gets a PATCH whose body trickles after 5 MiB (more than one 4 MiB part) until A
    // recorded a part, then stalls.
    let sentToA = 5 * MiB;
    let writeToA = (_bytes: number) => {};
    // Resolves with A's answer, or status 0 when A closed the connection instead (it stops reading a stopped body).
    const answerA = new Promise<{ status: number; offset: number }>((resolve) => {
      const req = httpRequest(`${a.base}${path}`, {
        method: "PATCH",
        headers: { ...patchHeaders(0), "content-length": String(data.length) },
      });
      req.on("response", (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, offset: Number(res.headers["upload-offset"]) });
      });
      req.on("error", () => resolve({ status: 0, offset: Number.NaN }));
      req.write(data.subarray(0, sentToA));
      writeToA = (bytes) => {
        req.write(data.subarray(sentToA, sentToA + bytes));
        sentToA += bytes;
      };
    });
    const db = await openSqlite(database);
    try {
      await eventually(async () => {
        const row = await db.get<{ n: number }>(
          "SELECT count(*) AS n FROM storeroom_upload_parts WHERE claim_id = $1",
          [claimId],
        );
        if (Number(row?.n) >= 1) return true;
        writeToA(1024);
        return false;
      }, 20_000);
    } finally {
      await db.close();
    }

    // Process B gets the whole body at offset 0 while A still holds the upload.
    const answerB = await fetch(`${b.base}${path}`, {
      method: "PATCH",
      headers: patchHeaders(0),
      body: data,
    });
    // A was stopped and saved what it had; B's offset no longer matched, so B appended nothing.
    expect((await answerA).status).toBe(0);
    expect(answerB.status).toBe(409);
    const offset = await head(`${b.base}${path}`);
    expect(offset).toBeGreaterThanOrEqual(4 * MiB);
    expect(offset).toBeLessThanOrEqual(sentToA);

    // The client resumes on B from the offset; the file is exact.
    const rest = await fetch(`${b.base}${path}`, {
      method: "PATCH",
      headers: patchHeaders(offset),
      body: data.subarray(offset),
    });
    expect(rest.status).toBe(204);
    const key = rest.headers.get("storeroom-file-key");
    const res = await fetch(`${a.base}/v1/files/${key}`, { headers: auth(tokens.ada) });
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(data));
  });
});
