import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError, TooLargeError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import type { ObjectStore } from "../../src/objects/index.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { DeleteQueue, UploadPartStore, UploadService, uploadsMigrations } from "../../src/uploads/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { useProxiedS3rver } from "../support/use-proxied-s3rver.js";

const MiB = 1024 * 1024;

/** A streamed body of unknown length, as an HTTP request without Content-Length arrives. */
const stream = (bytes: Buffer) => Readable.from([bytes.subarray(0, 3), bytes.subarray(3)]);

describe("parts are validated before the backend keeps them", () => {
  const dir = useTempDir("storeroom-part-validation-");
  const s3rver = useProxiedS3rver();
  let n = 0;

  const backends: [string, () => ObjectStore, number][] = [
    ["memory", () => new MemoryObjectStore({ partSize: 1024 }), 1024],
    ["filesystem", () => new FileObjectStore({ root: join(dir, `objects-${n++}`), partSize: 1024 }), 1024],
    ["s3 (s3rver)", () => new S3ObjectStore({ ...s3rver.storeOptions, partSize: 5 * MiB }), 5 * MiB],
  ];

  const setup = async (make: () => ObjectStore) => {
    const db = await openSqlite(join(dir, `db-${n++}.sqlite`));
    await db.migrate(uploadsMigrations);
    const objects = new FaultyObjectStore(make());
    const clock = new ManualClock(Date.parse("2026-05-14T10:00:00Z"));
    return {
      db,
      objects,
      uploads: await UploadService.open({ database: db, objects, clock }),
      queue: new DeleteQueue({ database: db, clock }),
    };
  };

  for (const [name, make, partSize] of backends) {
    describe(name, () => {
      it("a short re-send of an accepted non-final part keeps the accepted part", { timeout: 30_000 }, async () => {
        const { db, uploads } = await setup(make);
        const data = randomBytes(partSize + 10);
        const init = await uploads.initUpload("alice", { filename: "a.bin", size: data.length });
        expect(init.partCount).toBe(2);
        const first = data.subarray(0, partSize);
        await uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: stream(first) });
        await uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 2, body: data.subarray(partSize) });
        await expect(
          uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: stream(first.subarray(0, 100)) }),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
        const progress = await uploads.listParts("alice", init.claimId);
        expect(progress).toMatchObject({ status: "pending" });
        expect("parts" in progress && progress.parts).toEqual([
          { partNumber: 1, size: partSize },
          { partNumber: 2, size: 10 },
        ]);
        const done = await uploads.completeUpload("alice", init.claimId);
        expect(done.size).toBe(data.length);
        await db.close();
      });

      it("a short re-send of the final part keeps the accepted part", { timeout: 30_000 }, async () => {
        const { db, uploads, objects } = await setup(make);
        const data = randomBytes(10);
        const init = await uploads.initUpload("alice", { filename: "a.bin", size: 10 });
        await uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: stream(data) });
        await expect(
          uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: stream(data.subarray(0, 7)) }),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
        const done = await uploads.completeUpload("alice", init.claimId);
        expect(done.size).toBe(10);
        const stored = await objects.get(done.key);
        expect(stored === null ? null : await buffer(stored.body)).toEqual(data);
        await db.close();
      });

      it("a part larger than the declared size is refused with TooLargeError and never stored", async () => {
        const { db, uploads, objects } = await setup(make);
        const init = await uploads.initUpload("alice", { filename: "a.bin", size: 10 });
        await expect(
          uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: randomBytes(13) }),
        ).rejects.toBeInstanceOf(TooLargeError);
        // Bytes are measured up front: the backend was never asked to store the 13-byte buffer.
        expect(objects.calls.filter((c) => c.method === "putPart")).toHaveLength(0);
        await expect(
          uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: stream(randomBytes(13)) }),
        ).rejects.toBeInstanceOf(TooLargeError);
        expect(await uploads.listParts("alice", init.claimId)).toMatchObject({ status: "pending", parts: [] });
        const data = randomBytes(10);
        await uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: data });
        expect((await uploads.completeUpload("alice", init.claimId)).size).toBe(10);
        await db.close();
      });
    });
  }

  it("a known contentLength other than the part's exact size is refused before the backend is called", async () => {
    const { db, uploads, objects } = await setup(() => new MemoryObjectStore({ partSize: 1024 }));
    const init = await uploads.initUpload("alice", { filename: "a.bin", size: 3000 });
    const before = objects.calls.length;
    const body = () => Readable.from([randomBytes(10)]);
    await expect(
      uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: body(), contentLength: 1000 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 3, body: body(), contentLength: 953 }),
    ).rejects.toBeInstanceOf(TooLargeError);
    await expect(
      uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 3, body: body(), contentLength: 951 }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(objects.calls.slice(before).map((c) => c.method)).toEqual([]);
    await db.close();
  });

  it("an assembled size other than the declared one queues the object for deletion with reason size_mismatch", async () => {
    const { db, uploads, queue, objects } = await setup(() => new MemoryObjectStore({ partSize: 1024 }));
    const init = await uploads.initUpload("alice", { filename: "a.bin", size: 10 });
    await uploads.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: randomBytes(10) });
    // Another writer holding the upload id replaced the part and its record behind the service's back.
    const foreign = await objects.putPart(init.key, init.uploadId, 1, randomBytes(12));
    await new UploadPartStore({ database: db }).upsert({ claimId: init.claimId, partNumber: 1, ...foreign });
    await expect(uploads.completeUpload("alice", init.claimId)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await queue.list()).map((d) => ({ key: d.key, reason: d.reason, owner: d.owner }))).toEqual([
      { key: init.key, reason: "size_mismatch", owner: "alice" },
    ]);
    await expect(uploads.listParts("alice", init.claimId)).rejects.toMatchObject({ code: "CLAIM_NOT_FOUND" });
    await db.close();
  });
});
