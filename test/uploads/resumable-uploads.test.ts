import { createHash, randomBytes } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { ChecksumMismatchError, ConflictError, TooLargeError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { ResumableUploads, UploadService } from "../../src/uploads/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { forEachEngine } from "./engines.js";

const PART = 1024;

/** Yields `data` in pieces of `size` bytes. */
async function* pieces(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

forEachEngine("ResumableUploads", (ctx) => {
  const setup = async () => {
    const { db } = ctx();
    const clock = new ManualClock(Date.parse("2026-05-14T10:00:00Z"));
    const objects = new FaultyObjectStore(new MemoryObjectStore({ partSize: PART }));
    const uploads = await UploadService.open({ database: db, objects, clock, migrate: false });
    return { db, clock, objects, resumable: new ResumableUploads({ database: db, objects, uploads, clock }) };
  };

  it("appends at offsets of any size, keeps bytes past the last whole part, and publishes on the last byte", async () => {
    const { resumable, objects } = await setup();
    const data = randomBytes(5 * PART + 77);
    const created = await resumable.create("alice", { filename: "a.bin", size: data.length, metadata: "k dg==" });
    let offset = 0;
    for (const size of [100, 1500, 7, 2048, 1000]) {
      const status = await resumable.append(
        "alice",
        created.claimId,
        offset,
        pieces(data.subarray(offset, offset + size), 33),
      );
      offset += size;
      expect(status.offset).toBe(offset);
      expect((await resumable.status("alice", created.claimId)).offset).toBe(offset);
    }
    const last = await resumable.append("alice", created.claimId, offset, pieces(data.subarray(offset), 500));
    expect(last).toMatchObject({ complete: true, offset: data.length, metadata: "k dg==" });
    const stored = await objects.get(last.file?.key as string);
    expect(stored === null ? null : await buffer(stored.body)).toEqual(data);
  });

  it("keeps what arrived when the body fails midway, and the part whose store failed", async () => {
    const { resumable, objects } = await setup();
    const data = randomBytes(3 * PART);
    const created = await resumable.create("alice", { filename: "a.bin", size: data.length });
    async function* broken() {
      yield data.subarray(0, 1500);
      throw Object.assign(new Error("aborted"), { code: "ECONNRESET" });
    }
    expect((await resumable.append("alice", created.claimId, 0, broken())).offset).toBe(1500);
    objects.failNext("putPart");
    await expect(
      resumable.append("alice", created.claimId, 1500, pieces(data.subarray(1500, 2100), 600)),
    ).rejects.toThrow();
    // The failed part (bytes 1024..2047) is kept as the tail; the bytes after it were dropped.
    expect((await resumable.status("alice", created.claimId)).offset).toBe(2048);
    const done = await resumable.append("alice", created.claimId, 2048, pieces(data.subarray(2048), 100));
    expect(done.complete).toBe(true);
    const stored = await objects.get(done.file?.key as string);
    expect(stored === null ? null : await buffer(stored.body)).toEqual(data);
  });

  it("a part failing while later ones are stored keeps the parts before it and itself, and resumes byte-identical", async () => {
    const { resumable, objects } = await setup();
    const data = randomBytes(8 * PART + 5);
    const created = await resumable.create("alice", { filename: "a.bin", size: data.length });
    let calls = 0;
    objects.beforeCall = async (method) => {
      if (method !== "putPart" || ++calls !== 3) return;
      // Part 3 fails only after parts 4 and 5 were stored: several parts are in flight at once.
      const deadline = Date.now() + 10_000;
      while (objects.succeeded("putPart") < 4 && Date.now() < deadline) await new Promise(setImmediate);
      throw new Error("disk full");
    };
    await expect(resumable.append("alice", created.claimId, 0, pieces(data, 700))).rejects.toThrow("disk full");
    objects.beforeCall = undefined;
    expect(objects.succeeded("putPart")).toBeGreaterThanOrEqual(4);
    expect((await resumable.status("alice", created.claimId)).offset).toBe(3 * PART);
    const done = await resumable.append("alice", created.claimId, 3 * PART, pieces(data.subarray(3 * PART), 999));
    expect(done.complete).toBe(true);
    const stored = await objects.get(done.file?.key as string);
    expect(stored === null ? null : await buffer(stored.body)).toEqual(data);
  });

  it("refuses a wrong offset, bytes past the declared size, and keeps nothing of an append whose checksum fails", async () => {
    const { resumable } = await setup();
    const data = randomBytes(2 * PART + 10);
    const created = await resumable.create("alice", { filename: "a.bin", size: data.length });
    await expect(resumable.append("alice", created.claimId, 5, pieces(data, 10))).rejects.toBeInstanceOf(ConflictError);
    await expect(
      resumable.append("alice", created.claimId, 0, pieces(data, 10), { contentLength: data.length + 1 }),
    ).rejects.toBeInstanceOf(TooLargeError);
    const wrong = { algorithm: "sha1", digest: createHash("sha1").update("other").digest() };
    await expect(
      resumable.append("alice", created.claimId, 0, pieces(data.subarray(0, 1500), 100), { checksum: wrong }),
    ).rejects.toBeInstanceOf(ChecksumMismatchError);
    expect((await resumable.status("alice", created.claimId)).offset).toBe(0);
    const right = { algorithm: "sha256", digest: createHash("sha256").update(data.subarray(0, 1500)).digest() };
    const ok = await resumable.append("alice", created.claimId, 0, pieces(data.subarray(0, 1500), 100), {
      checksum: right,
    });
    expect(ok.offset).toBe(1500);
    await expect(
      resumable.append(
        "alice",
        created.claimId,
        1500,
        pieces(Buffer.concat([data.subarray(1500), Buffer.alloc(1)]), 600),
      ),
    ).rejects.toBeInstanceOf(TooLargeError);
  });

  it("a new append stops one whose client went silent, and resumes from what it kept", async () => {
    const { resumable } = await setup();
    const data = randomBytes(2 * PART);
    const created = await resumable.create("alice", { filename: "a.bin", size: data.length });
    let delivered = false;
    async function* silent() {
      yield data.subarray(0, 700);
      delivered = true;
      await new Promise(() => undefined);
    }
    const stuck = resumable.append("alice", created.claimId, 0, silent());
    const deadline = Date.now() + 5_000;
    while (!delivered && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const status = await resumable.status("alice", created.claimId);
    expect(status.offset).toBe(700);
    expect((await stuck).offset).toBe(700);
    const done = await resumable.append("alice", created.claimId, 700, pieces(data.subarray(700), 300));
    expect(done.complete).toBe(true);
  });

  it("a holder that died delays the next append by at most leaseMs, 10 s by default", async () => {
    const { db, clock, resumable } = await setup();
    const lease = (claimId: string) =>
      db.get<{ holder: string | null; expires: number | string | null; wanted: number | string }>(
        "SELECT lease_holder AS holder, lease_expires_at AS expires, lease_wanted AS wanted FROM storeroom_upload_offsets WHERE claim_id = $1",
        [claimId],
      );
    // A live append holds the lease for leaseMs from when it took it.
    const live = await resumable.create("alice", { filename: "a.bin", size: 10 });
    let delivered = false;
    async function* silent() {
      yield Buffer.from("abc");
      delivered = true;
      await new Promise(() => undefined);
    }
    const stuck = resumable.append("alice", live.claimId, 0, silent());
    await vi.waitFor(() => expect(delivered).toBe(true), { timeout: 10_000 });
    expect(Number((await lease(live.claimId))?.expires) - clock.now()).toBe(10_000);
    await resumable.status("alice", live.claimId);
    expect((await stuck).offset).toBe(3);

    // A holder killed with the lease: nobody renews or releases it.
    const orphaned = await resumable.create("alice", { filename: "b.bin", size: 10 });
    await resumable.status("alice", orphaned.claimId);
    await db.run(
      "UPDATE storeroom_upload_offsets SET lease_holder = 'killed', lease_expires_at = $1, lease_wanted = 0 WHERE claim_id = $2",
      [clock.now() + 10_000, orphaned.claimId],
    );
    let settled = false;
    const waiting = resumable.status("alice", orphaned.claimId).finally(() => {
      settled = true;
    });
    // The newcomer asked for the lease and waits for it.
    await vi.waitFor(async () => expect(Number((await lease(orphaned.claimId))?.wanted)).toBe(1), { timeout: 10_000 });
    clock.advance(9_999);
    // It tries again after that (and asks again) without taking the lease.
    await db.run("UPDATE storeroom_upload_offsets SET lease_wanted = 0 WHERE claim_id = $1", [orphaned.claimId]);
    await vi.waitFor(async () => expect(Number((await lease(orphaned.claimId))?.wanted)).toBe(1), { timeout: 10_000 });
    expect((await lease(orphaned.claimId))?.holder).toBe("killed");
    expect(settled).toBe(false);
    clock.advance(1);
    expect((await waiting).offset).toBe(0);
  });
});
