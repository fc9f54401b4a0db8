import { expect, it } from "vitest";
import { ManualClock, ManualScheduler } from "../../src/clock.js";
import { AccessDeniedError, InvalidArgumentError, UploadFailedError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { ClaimSweeper } from "../../src/uploads/claim-sweeper.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { DeleteWorker, deleteBackoffMs } from "../../src/uploads/delete-worker.js";
import { Outbox } from "../../src/uploads/outbox.js";
import { UploadPartStore } from "../../src/uploads/upload-part-store.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { forEachEngine } from "./engines.js";
import { lifecycleCalls, newClaim } from "./fixtures.js";

it("backs off 30 s x 2^attempt, clamped at 2^7 and capped at 1 h", () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8, 11].map((a) => deleteBackoffMs(a) / 60_000)).toEqual([
    1, 2, 4, 8, 16, 32, 60, 60, 60,
  ]);
});

forEachEngine("ClaimSweeper and DeleteWorker", (ctx) => {
  const setup = () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000_000);
    const objects = new FaultyObjectStore(new MemoryObjectStore({ partSize: 5 }));
    return {
      db,
      clock,
      objects,
      claims: new ClaimStore({ database: db, clock }),
      parts: new UploadPartStore({ database: db, clock }),
      queue: new DeleteQueue({ database: db, clock }),
      outbox: new Outbox({ database: db, clock }),
      sweeper: new ClaimSweeper({ database: db, objects, clock }),
      worker: new DeleteWorker({ database: db, objects, clock }),
    };
  };

  it("moves an expired pending claim to the delete queue with its upload id; parts cascade", async () => {
    const { claims, parts, queue, sweeper, clock, objects } = setup();
    const uploadId = await objects.initMultipart("priv/x.bin");
    const claim = await claims.create(newClaim({ key: "priv/x.bin", uploadId, expiresAt: clock.now() - 1 }));
    await parts.upsert({ claimId: claim.id, partNumber: 1, etag: "e", size: 5 });
    const result = await sweeper.runOnce();
    expect(result.expired.map((c) => c.id)).toEqual([claim.id]);
    expect(await claims.existingKeys([claim.key])).toEqual(new Set());
    expect(await parts.listByClaim(claim.id)).toEqual([]);
    expect((await queue.list()).map((r) => [r.key, r.uploadId, r.reason])).toEqual([
      ["priv/x.bin", uploadId, "claim_expired"],
    ]);
  });

  it("sweeps a claim at the moment it expires, when UploadService starts refusing it", async () => {
    const { claims, sweeper, clock } = setup();
    const live = await claims.create(newClaim({ expiresAt: clock.now() + 1 }));
    const due = await claims.create(newClaim({ expiresAt: clock.now() }));
    expect((await sweeper.runOnce()).expired.map((c) => c.id)).toEqual([due.id]);
    clock.advance(1);
    expect((await sweeper.runOnce()).expired.map((c) => c.id)).toEqual([live.id]);
  });

  it("leaves live and uploaded claims alone and is a no-op when nothing expired", async () => {
    const { claims, queue, sweeper, clock } = setup();
    await claims.create(newClaim({ expiresAt: clock.now() + 1 }));
    const uploaded = await claims.create(newClaim({ expiresAt: clock.now() - 100 }));
    await claims.markUploaded(uploaded.id);
    expect(await sweeper.runOnce()).toEqual({ expired: [], recovered: [] });
    expect(await queue.count()).toBe(0);
  });

  it("recovers an expired claim whose object was already finalised", async () => {
    const { claims, queue, sweeper, clock, objects } = setup();
    await objects.put("priv/done.bin", "0123456789");
    const claim = await claims.create(newClaim({ key: "priv/done.bin", size: 10, expiresAt: clock.now() - 1 }));
    const result = await sweeper.runOnce();
    expect(result.recovered.map((c) => c.id)).toEqual([claim.id]);
    expect((await claims.get(claim.id)).status).toBe("uploaded");
    expect(await queue.count()).toBe(0);
  });

  it("keeps claims and queue unchanged when the sweep cannot reach the backend", async () => {
    const { claims, queue, sweeper, clock, objects } = setup();
    const claim = await claims.create(newClaim({ expiresAt: clock.now() - 1 }));
    objects.failNext("head", { times: Infinity, error: () => new UploadFailedError("backend down") });
    await expect(sweeper.runOnce()).rejects.toBeInstanceOf(UploadFailedError);
    expect((await claims.get(claim.id)).status).toBe("pending");
    expect(await queue.count()).toBe(0);
  });

  it("aborts the multipart session before deleting, marks done and writes file.deleted", async () => {
    const { queue, worker, objects, outbox } = setup();
    const uploadId = await objects.initMultipart("priv/m.bin");
    await objects.put("priv/plain.bin", "x");
    await queue.enqueue([{ key: "priv/m.bin", uploadId, reason: "claim_expired" }]);
    await queue.schedule(["priv/plain.bin"], "deleted");
    const result = await worker.runOnce();
    expect(result.results.map((r) => r.status)).toEqual(["deleted", "deleted"]);
    expect(lifecycleCalls(objects, "priv/m.bin")).toEqual(["initMultipart", "abortMultipart", "delete"]);
    expect(await objects.head("priv/plain.bin")).toBeNull();
    expect(await queue.count()).toBe(0);
    const topics = (await outbox.pending()).map((e) => e.topic);
    expect(topics).toEqual(["file.deleted", "file.deleted"]);
  });

  it("treats a missing object as success", async () => {
    const { queue, worker } = setup();
    await queue.schedule(["priv/never-existed.bin"], "deleted");
    expect((await worker.runOnce()).results[0]?.status).toBe("deleted");
    expect(await queue.count()).toBe(0);
  });

  it("defers a transient failure with backoff, then succeeds when due again", async () => {
    const { queue, worker, objects, clock } = setup();
    await objects.put("priv/a.bin", "x");
    await queue.schedule(["priv/a.bin"], "deleted");
    objects.failNext("delete", { times: Infinity, error: () => new UploadFailedError("503") });
    expect((await worker.runOnce()).results[0]?.status).toBe("deferred");
    const [row] = await queue.list();
    expect(row).toMatchObject({ attempts: 1, nextAttemptAt: clock.now() + 60_000, lastError: "503" });
    objects.clearFaults();
    clock.advance(59_999);
    expect((await worker.runOnce()).leased).toBe(0);
    clock.advance(1);
    expect((await worker.runOnce()).results[0]?.status).toBe("deleted");
    expect(await objects.head("priv/a.bin")).toBeNull();
  });

  it("a worker whose lease ran out while its delete failed leaves alone the row another worker finished meanwhile", async () => {
    const { db, queue, objects, clock, outbox } = setup();
    await objects.put("priv/slow.bin", "x");
    await queue.schedule(["priv/slow.bin"], "deleted");
    let release: (() => void) | undefined;
    let entered: (() => void) | undefined;
    const inDelete = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    objects.beforeCall = async (method) => {
      if (method !== "delete") return;
      objects.beforeCall = undefined;
      entered?.();
      await held;
    };
    objects.failNext("delete", { error: () => new UploadFailedError("timed out") });
    const slow = new DeleteWorker({ database: db, objects, clock, leaseMs: 1_000 }).runOnce();
    await inDelete;
    clock.advance(1_001);
    const other = await new DeleteWorker({ database: db, objects: objects.inner, clock, leaseMs: 1_000 }).runOnce();
    expect(other.results.map((r) => r.status)).toEqual(["deleted"]);
    release?.();
    const late = await slow;
    expect(late.leased).toBe(1);
    expect(late.results).toEqual([]);
    expect(await queue.count()).toBe(0);
    expect(await queue.deadLetters()).toEqual([]);
    expect((await outbox.pending()).map((e) => e.topic)).toEqual(["file.deleted"]);
  });

  it("dead-letters after 12 attempts: the row is retired, never leased again, one event", async () => {
    const { queue, worker, objects, clock, outbox } = setup();
    await queue.schedule(["priv/locked.bin"], "deleted");
    objects.failNext("delete", { times: Infinity, error: () => new AccessDeniedError("denied") });
    const statuses: string[] = [];
    for (let i = 0; i < 12; i++) {
      const { results } = await worker.runOnce();
      statuses.push(...results.map((r) => r.status));
      clock.advance(3_600_000);
    }
    expect(statuses).toEqual([...Array(11).fill("deferred"), "dead_letter"]);
    expect(await queue.count()).toBe(0);
    clock.advance(1_000 * 3_600_000);
    expect((await worker.runOnce()).leased).toBe(0);
    const [dead] = await queue.deadLetters();
    expect(dead).toMatchObject({ key: "priv/locked.bin", attempts: 12, errorClass: "access_denied" });
    const events = (await outbox.pending()).filter((e) => e.topic === "delete.dead_letter");
    expect(events).toHaveLength(1);
  });

  it("rejects a tunable <= 0 with an InvalidArgumentError naming it, and uses the defaults when absent", async () => {
    const { db, queue, objects, clock } = setup();
    for (const [option, value] of [
      ["batchSize", 0],
      ["leaseMs", -1],
      ["concurrency", 0],
      ["maxAttempts", 1.5],
      ["baseBackoffMs", Number.NaN],
    ] as const) {
      expect(() => new DeleteWorker({ database: db, objects, clock, [option]: value })).toThrow(
        new RegExp(`^${option} must be a positive integer`),
      );
    }
    expect(() => new ClaimSweeper({ database: db, objects, clock, batchSize: 0 })).toThrow(InvalidArgumentError);
    expect(() => new DeleteWorker({ database: db, objects, clock, intervalMs: -5 })).toThrow(/^intervalMs must be/);
    const worker = new DeleteWorker({ database: db, objects, clock });
    await queue.schedule(
      Array.from({ length: 150 }, (_, i) => `k${i}`),
      "deleted",
    );
    expect((await worker.runOnce()).leased).toBe(100);
    expect((await worker.runOnce()).leased).toBe(50);
  });

  it("intervalMs: 0 disables the timers; a ManualScheduler clock drives them", async () => {
    const { db, queue, objects } = setup();
    const clock = new ManualScheduler(1_000_000);
    const off = new DeleteWorker({ database: db, objects, clock, intervalMs: 0 });
    off.start();
    expect(clock.pending).toBe(0);
    const worker = new DeleteWorker({ database: db, objects, clock, intervalMs: 60_000 });
    await queue.schedule(["scheduled"], "deleted");
    worker.start();
    expect(clock.pending).toBe(1);
    clock.advance(60_000);
    await expect.poll(() => queue.count(), { timeout: 5_000 }).toBe(0);
    await worker.stop();
    expect(clock.pending).toBe(0);
  });

  it("start() runs ticks on a timer and stop() waits for the running one", async () => {
    const { db, queue, objects } = setup();
    const worker = new DeleteWorker({ database: db, objects, intervalMs: 10 });
    await queue.schedule(["t1"], "deleted");
    worker.start();
    await expect.poll(() => queue.count(), { timeout: 5_000 }).toBe(0);
    await worker.stop();
    expect(objects.succeeded("delete", "t1")).toBe(1);
  });
});
