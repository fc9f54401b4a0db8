import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, UnsupportedError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { UploadService } from "../../src/uploads/index.js";
import { auth, startServer, tokens } from "../server/server-fixture.js";
import { useTempDir } from "../support/temp-dir.js";
import { useProxiedS3rver } from "../support/use-proxied-s3rver.js";

const PART = 64 * 1024;

describe("direct-to-S3 parts (presigned URLs, s3rver behind the conditional proxy)", () => {
  const dir = useTempDir("storeroom-direct-parts-");
  const s3rver = useProxiedS3rver();
  let n = 0;
  const setup = async () => {
    const db = await openSqlite(join(dir, `db-${n++}.sqlite`));
    const objects = new S3ObjectStore({ ...s3rver.storeOptions, partSize: PART });
    return { db, objects, uploads: await UploadService.open({ database: db, objects }) };
  };
  const put = (url: string, body: Buffer) => fetch(url, { method: "PUT", body });

  it("clients PUT parts straight to the bucket; completion verifies them against the declared size", async () => {
    const { db, objects, uploads } = await setup();
    const data = randomBytes(3 * PART + 1000);
    const init = await uploads.initUpload("alice", { filename: "v.mp4", size: data.length, direct: true });
    expect(init.parts?.map((p) => [p.partNumber, p.size])).toEqual([
      [1, PART],
      [2, PART],
      [3, PART],
      [4, 1000],
    ]);
    for (const part of init.parts ?? []) {
      expect(part.url).toContain("X-Amz-Signature=");
      const res = await put(part.url, data.subarray((part.partNumber - 1) * PART, part.partNumber * PART));
      expect(res.status).toBe(200);
    }
    const done = await uploads.completeUpload("alice", init.claimId);
    expect(done.size).toBe(data.length);
    const stored = await objects.get(init.key);
    expect(stored === null ? null : await buffer(stored.body)).toEqual(data);
    await db.close();
  });

  it("a part of the wrong size sent straight to the bucket is refused at completion and nothing is published", async () => {
    const { db, objects, uploads } = await setup();
    const data = randomBytes(PART + 10);
    const init = await uploads.initUpload("alice", { filename: "v.bin", size: data.length, direct: true });
    const [first, second] = init.parts ?? [];
    await put(first?.url as string, data.subarray(0, PART));
    await expect(uploads.completeUpload("alice", init.claimId)).rejects.toThrow(/parts incomplete: 1 of 2/);
    await put(second?.url as string, Buffer.concat([data.subarray(PART), Buffer.alloc(5)]));
    await expect(uploads.completeUpload("alice", init.claimId)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await objects.head(init.key)).toBeNull();
    // The URL stays valid until the claim expires: sending the part again fixes the upload.
    await put(second?.url as string, data.subarray(PART));
    expect((await uploads.completeUpload("alice", init.claimId)).size).toBe(data.length);
    await db.close();
  });

  it("a store that takes no direct parts refuses direct: true with UnsupportedError", async () => {
    const db = await openSqlite(join(dir, `db-${n++}.sqlite`));
    const uploads = await UploadService.open({ database: db, objects: new MemoryObjectStore() });
    await expect(uploads.initUpload("alice", { filename: "a", size: 3, direct: true })).rejects.toBeInstanceOf(
      UnsupportedError,
    );
    await db.close();
  });

  it("POST /v1/uploads with direct: true on an S3-backed server returns part URLs that complete an upload", async () => {
    const objects = new S3ObjectStore({ ...s3rver.storeOptions, partSize: PART });
    const server = await startServer(join(dir, "server"), { objects });
    const base = await server.listen();
    const data = randomBytes(2 * PART + 7);
    const res = await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: { ...auth(tokens.ada), "content-type": "application/json" },
      body: JSON.stringify({ filename: "d.bin", size: data.length, direct: true }),
    });
    expect(res.status).toBe(201);
    const init = (await res.json()) as { claimId: string; parts: { partNumber: number; url: string }[] };
    for (const part of init.parts) {
      expect((await put(part.url, data.subarray((part.partNumber - 1) * PART, part.partNumber * PART))).status).toBe(
        200,
      );
    }
    const done = await fetch(`${base}/v1/uploads/${init.claimId}/complete`, {
      method: "POST",
      headers: auth(tokens.ada),
    });
    const file = (await done.json()) as { url: string };
    const got = await fetch(`${base}${file.url}`, { headers: auth(tokens.ada) });
    expect(Buffer.from(await got.arrayBuffer())).toEqual(data);
    const bad = await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: { ...auth(tokens.ada), "content-type": "application/json" },
      body: JSON.stringify({ filename: "d.bin", size: 3, direct: "yes" }),
    });
    expect(bad.status).toBe(400);
  });
});
