import { randomBytes } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import {
  AccessDeniedError,
  BusyError,
  ClaimNotFoundError,
  ConflictError,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  TooLargeError,
  UploadFailedError,
} from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { openSqlite, tableExists } from "../../src/sql/index.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { ClaimSweeper } from "../../src/uploads/claim-sweeper.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { UploadService } from "../../src/uploads/upload-service.js";
import type { UploadServiceOptions } from "../../src/uploads/upload-service-options.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { forEachEngine } from "./engines.js";
import { FaultyExecutor } from "./faulty-executor.js";
import { lifecycleCalls, newClaim } from "./fixtures.js";

const PART = 1024;
const START = Date.parse("2026-05-14T10:00:00Z");

forEachEngine("UploadService", (ctx) => {
  const setup = (options: Partial<UploadServiceOptions> = {}) => {
    const { db } = ctx();
    const clock = new ManualClock(START);
    const objects = new FaultyObjectStore(new MemoryObjectStore({ partSize: PART, maxPartCount: 50 }));
    const service = new UploadService({ database: db, objects, clock, ...options });
    return {
      db,
      clock,
      objects,
      service,
      claims: new ClaimStore({ database: db, clock }),
      queue: new DeleteQueue({ database: db, clock }),
    };
  };

  const uploadAll = async (service: UploadService, owner: string, claimId: string, data: Buffer, partSize = PART) => {
    const count = Math.ceil(data.length / partSize);
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        service.uploadPart(owner, {
          claimId,
          partNumber: count - i,
          body: data.subarray((count - i - 1) * partSize, (count - i) * partSize),
        }),
      ),
    );
  };

  it("uploads in parts (out of order, concurrently), completes and makes the claim consumable", async () => {
    const { service, objects, claims, db } = setup();
    const data = randomBytes(PART * 3 + 100);
    const init = await service.initUpload("alice", {
      filename: "cat.PNG",
      size: data.length,
      contentType: "image/png",
    });
    expect(init).toMatchObject({ partSize: PART, partCount: 4, contentType: "image/png", originalFilename: "cat.PNG" });
    expect(init.key).toMatch(/^priv\/2026\/05\/14\/[0-9a-f-]{36}\.PNG$/);
    expect(init.expiresAt).toBe(START + 24 * 3_600_000);
    await uploadAll(service, "alice", init.claimId, data);
    const progress = await service.listParts("alice", init.claimId);
    if (progress.status !== "pending") throw new Error(`expected a pending upload, got ${progress.status}`);
    expect(progress.parts.map((p) => p.partNumber)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(progress.parts[0] ?? {})).toEqual(["partNumber", "size"]);
    const done = await service.completeUpload("alice", init.claimId);
    expect(await service.listParts("alice", init.claimId)).toEqual({
      claimId: init.claimId,
      key: init.key,
      status: "uploaded",
      size: data.length,
      partSize: PART,
      partCount: 4,
    });
    expect(done).toMatchObject({
      key: init.key,
      size: data.length,
      contentType: "image/png",
      originalFilename: "cat.PNG",
    });
    const stored = await objects.get(init.key);
    expect(Buffer.compare(await buffer(stored!.body), data)).toBe(0);
    expect((await claims.get(init.claimId)).status).toBe("uploaded");
    expect(await service.completeUpload("alice", init.claimId)).toEqual(done);
    await db.transaction((tx) => claims.consumeMany([init.key], "alice", { executor: tx }));
    await expect(claims.get(init.claimId)).rejects.toBeInstanceOf(ClaimNotFoundError);
  });

  it("handles a single-part upload and sanitises the content type", async () => {
    const { service } = setup({ allowPublicUploads: true });
    const init = await service.initUpload("alice", {
      filename: "evil.html",
      size: 5,
      contentType: "text/html",
      public: true,
    });
    expect(init).toMatchObject({ partCount: 1, contentType: "application/octet-stream" });
    expect(init.key).toMatch(/^pub\/2026\/05\/14\/[0-9a-f-]{36}\.html$/);
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "hello" });
    expect((await service.completeUpload("alice", init.claimId)).size).toBe(5);
  });

  it("rejects bad init input with typed errors and creates nothing", async () => {
    const { service, claims, objects } = setup({ maxUploadSize: PART * 10 });
    const cases: [Parameters<UploadService["initUpload"]>, unknown][] = [
      [["alice", { filename: "a.bin", size: PART * 10 + 1 }], TooLargeError],
      [["alice", { filename: "x".repeat(256), size: 1 }], InvalidArgumentError],
      [["alice", { filename: "", size: 1 }], InvalidArgumentError],
      [["alice", { filename: "a.bin", size: -1 }], InvalidArgumentError],
      [["alice", { filename: "a.bin", size: 1.5 }], InvalidArgumentError],
      [["alice", { filename: "a.bin", size: 1, contentType: "x".repeat(128) }], InvalidArgumentError],
      [["alice", { filename: "a.bin", size: 1, public: true }], AccessDeniedError],
      [["", { filename: "a.bin", size: 1 }], AccessDeniedError],
      // A lone surrogate cannot be stored as UTF-8: the name would come back as other text.
      [["alice", { filename: "a\uD800.png", size: 1 }], InvalidArgumentError],
      [["alice\uDC00", { filename: "a.bin", size: 1 }], InvalidArgumentError],
    ];
    for (const [args, type] of cases) await expect(service.initUpload(...args)).rejects.toBeInstanceOf(type);
    expect(await claims.countPendingByOwner("alice")).toBe(0);
    expect(lifecycleCalls(objects)).toEqual([]);
  });

  it("rejects an upload needing more parts than the backend allows", async () => {
    const { service } = setup();
    await expect(service.initUpload("alice", { filename: "a.bin", size: PART * 51 })).rejects.toBeInstanceOf(
      TooLargeError,
    );
  });

  it("caps unfinished uploads per owner, exactly, under concurrency", async () => {
    const { service } = setup({ maxPendingClaims: 5 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => service.initUpload("alice", { filename: "a.bin", size: 1 })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(LimitExceededError);
    await expect(service.initUpload("bob", { filename: "a.bin", size: 1 })).resolves.toBeDefined();
  });

  it("inserts the claim before any backend side effect and removes it when the backend fails", async () => {
    const { service, objects, claims } = setup();
    let claimAtInit: unknown;
    objects.beforeCall = async (method, key) => {
      if (method === "initMultipart") claimAtInit = await claims.getByKey(key);
    };
    objects.failNext("initMultipart", { times: Infinity, error: () => new UploadFailedError("backend down") });
    await expect(service.initUpload("alice", { filename: "a.bin", size: 1 })).rejects.toBeInstanceOf(UploadFailedError);
    expect(claimAtInit).toMatchObject({ status: "pending", uploadId: "" });
    expect(await claims.countPendingByOwner("alice")).toBe(0);
  });

  it("checks owner, state, part numbers and part sizes at uploadPart", async () => {
    const { service, clock } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: PART * 2 + 10 });
    const id = init.claimId;
    await expect(
      service.uploadPart("bob", { claimId: id, partNumber: 1, body: randomBytes(PART) }),
    ).rejects.toBeInstanceOf(AccessDeniedError);
    await expect(service.uploadPart("alice", { claimId: id, partNumber: 4, body: "x" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(service.uploadPart("alice", { claimId: id, partNumber: 0, body: "x" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(
      service.uploadPart("alice", { claimId: id, partNumber: 1, body: randomBytes(10) }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      service.uploadPart("alice", { claimId: id, partNumber: 3, body: randomBytes(PART + 1) }),
    ).rejects.toBeInstanceOf(TooLargeError);
    async function* stream() {
      yield randomBytes(PART);
      yield randomBytes(1);
    }
    await expect(service.uploadPart("alice", { claimId: id, partNumber: 2, body: stream() })).rejects.toBeInstanceOf(
      TooLargeError,
    );
    await expect(service.uploadPart("alice", { claimId: "missing", partNumber: 1, body: "x" })).rejects.toBeInstanceOf(
      ClaimNotFoundError,
    );
    expect(await service.listParts("alice", id)).toMatchObject({ status: "pending", parts: [] });
    clock.advance(24 * 3_600_000);
    await expect(service.uploadPart("alice", { claimId: id, partNumber: 3, body: "x" })).rejects.toBeInstanceOf(
      ClaimNotFoundError,
    );
  });

  it("a completed claim refuses more parts with ConflictError", async () => {
    const { service } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: 3 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "abc" });
    await service.completeUpload("alice", init.claimId);
    await expect(
      service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "abd" }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it("an expired claim gives the same error on every path, before and after the sweeper removed it", async () => {
    const { db, service, clock, objects } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: PART + 1 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: randomBytes(PART) });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 2, body: "x" });
    clock.advance(24 * 3_600_000);
    // Each call's outcome is taken as it is made: a rejection awaited later would be reported
    // as unhandled while the first one is being awaited.
    const outcome = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      );
    const paths = () => [
      outcome(service.uploadPart("alice", { claimId: init.claimId, partNumber: 2, body: "y" })),
      outcome(service.completeUpload("alice", init.claimId)),
    ];
    for (const err of await Promise.all(paths())) {
      expect(err).toBeInstanceOf(ClaimNotFoundError);
      expect(err).toBeInstanceOf(NotFoundError);
    }
    const swept = await new ClaimSweeper({ database: db, objects, clock }).runOnce();
    expect(swept.expired.map((c) => c.id)).toEqual([init.claimId]);
    for (const err of await Promise.all([...paths(), outcome(service.listParts("alice", init.claimId))])) {
      expect(err).toBeInstanceOf(ClaimNotFoundError);
    }
  });

  it("re-validates the size limit at part and at completion (resume bypass)", async () => {
    const { db, objects, clock } = setup();
    const generous = new UploadService({ database: db, objects, clock, maxUploadSize: PART * 4 });
    const strict = new UploadService({ database: db, objects, clock, maxUploadSize: PART });
    const init = await generous.initUpload("alice", { filename: "a.bin", size: PART * 2 });
    const data = randomBytes(PART * 2);
    await expect(
      strict.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: data.subarray(0, PART) }),
    ).rejects.toBeInstanceOf(TooLargeError);
    await uploadAll(generous, "alice", init.claimId, data);
    await expect(strict.completeUpload("alice", init.claimId)).rejects.toBeInstanceOf(TooLargeError);
    expect((await generous.completeUpload("alice", init.claimId)).size).toBe(PART * 2);
  });

  it("refuses to complete with missing parts or after expiry", async () => {
    const { service, clock } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: PART + 1 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: randomBytes(PART) });
    await expect(service.completeUpload("alice", init.claimId)).rejects.toThrow(/parts incomplete: 1 of 2/);
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 2, body: "x" });
    await expect(service.completeUpload("bob", init.claimId)).rejects.toBeInstanceOf(AccessDeniedError);
    clock.advance(24 * 3_600_000);
    await expect(service.completeUpload("alice", init.claimId)).rejects.toBeInstanceOf(ClaimNotFoundError);
  });

  it("refuses a final part shorter than the rest of the declared size; the upload stays open", async () => {
    const { service, claims } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: PART + 10 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: randomBytes(PART) });
    await expect(
      service.uploadPart("alice", { claimId: init.claimId, partNumber: 2, body: randomBytes(3) }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(service.completeUpload("alice", init.claimId)).rejects.toThrow(/parts incomplete/);
    expect((await claims.get(init.claimId)).status).toBe("pending");
  });

  it("completes on retry when the backend already assembled the object", async () => {
    const { service, objects, claims } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: 4 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "abcd" });
    const { etag } = await objects.putPart(init.key, init.uploadId, 1, "abcd");
    await objects.inner.completeMultipart(init.key, init.uploadId, [{ partNumber: 1, etag }]);
    const done = await service.completeUpload("alice", init.claimId);
    expect(done.size).toBe(4);
    expect((await claims.get(init.claimId)).status).toBe("uploaded");
  });

  it("aborts idempotently: session, object and claim are gone; only the owner may abort", async () => {
    const { service, objects, claims } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: 5 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "hello" });
    await expect(service.abortUpload("bob", init.claimId)).rejects.toBeInstanceOf(AccessDeniedError);
    objects.failNext("abortMultipart", { times: Infinity, error: () => new Error("503") });
    await expect(service.abortUpload("alice", init.claimId)).rejects.toBeInstanceOf(UploadFailedError);
    expect((await claims.get(init.claimId)).status).toBe("pending");
    objects.clearFaults();
    await service.abortUpload("alice", init.claimId);
    await service.abortUpload("alice", init.claimId);
    await expect(claims.get(init.claimId)).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(objects.putPart(init.key, init.uploadId, 1, "hello")).rejects.toThrow();
    expect(objects.succeeded("abortMultipart")).toBe(1);
  });

  it("an empty file starts no multipart session and completes as an empty object", async () => {
    const { service, objects, claims } = setup();
    const init = await service.initUpload("alice", { filename: "empty.txt", size: 0 });
    expect(init).toMatchObject({ partCount: 0, uploadId: "" });
    expect(lifecycleCalls(objects)).toEqual([]);
    const done = await service.completeUpload("alice", init.claimId);
    expect(done).toMatchObject({ key: init.key, size: 0 });
    const stored = await objects.get(init.key);
    expect((await buffer(stored!.body)).length).toBe(0);
    expect((await claims.get(init.claimId)).status).toBe("uploaded");
    expect(lifecycleCalls(objects)).toEqual([]);
  });

  it("aborting a completed upload is a ConflictError; release removes its claim and queues the object as deleted, with the owner", async () => {
    const { service, objects, claims, queue } = setup();
    const init = await service.initUpload("alice", { filename: "a.bin", size: 3 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "abc" });
    await service.completeUpload("alice", init.claimId);
    await expect(service.abortUpload("alice", init.claimId)).rejects.toBeInstanceOf(ConflictError);
    expect((await claims.get(init.claimId)).status).toBe("uploaded");
    expect(await objects.head(init.key)).not.toBeNull();
    await expect(claims.release(init.key, "bob", queue)).rejects.toBeInstanceOf(ClaimNotFoundError);
    expect(await queue.count()).toBe(0);
    await claims.release(init.key, "alice", queue);
    await expect(claims.get(init.claimId)).rejects.toBeInstanceOf(ClaimNotFoundError);
    expect(await queue.list()).toMatchObject([{ key: init.key, reason: "deleted", owner: "alice" }]);
  });

  it("defaults to 100 unfinished uploads per owner and a 1 GiB size limit", async () => {
    const { db, clock } = setup();
    // Parts of 16 MiB, so 1 GiB needs fewer parts than the backend allows.
    const service = new UploadService({
      database: db,
      objects: new MemoryObjectStore({ partSize: 16 * 1024 ** 2 }),
      clock,
    });
    expect(service.maxUploadSize).toBe(1024 ** 3);
    await expect(service.initUpload("alice", { filename: "a.bin", size: 1024 ** 3 + 1 })).rejects.toBeInstanceOf(
      TooLargeError,
    );
    await service.initUpload("alice", { filename: "a.bin", size: 1024 ** 3 });
    for (let i = 1; i < 100; i++) await service.initUpload("alice", { filename: "a.bin", size: 0 });
    await expect(service.initUpload("alice", { filename: "a.bin", size: 0 })).rejects.toBeInstanceOf(
      LimitExceededError,
    );
  });

  it("never lets the sweeper reap a claim whose completion holds its lock", async () => {
    const { service, db, clock, claims, queue } = setup({ claimTtlMs: 1_000 });
    const init = await service.initUpload("alice", { filename: "a.bin", size: 3 });
    await service.uploadPart("alice", { claimId: init.claimId, partNumber: 1, body: "abc" });
    // The sweeper's database, seen through a counter of the transactions it asked for.
    let sweeperTransactions = 0;
    const watched = new Proxy(db, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (prop !== "transaction" || typeof v !== "function") return typeof v === "function" ? v.bind(target) : v;
        return (...args: unknown[]) => {
          sweeperTransactions++;
          return v.apply(target, args);
        };
      },
    });
    const sweeper = new ClaimSweeper({ database: watched, objects: new MemoryObjectStore(), clock });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let locked: () => void = () => {};
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const completing = db.transaction(async (tx) => {
      await claims.markUploaded(init.claimId, { executor: tx });
      locked();
      await held;
    });
    await isLocked;
    clock.advance(2_000);
    const sweeping = sweeper.runOnce();
    // Released only once the sweeper found the claim expired and waits for the claim's lock.
    await vi.waitFor(() => expect(sweeperTransactions).toBe(1), { timeout: 10_000 });
    release();
    await completing;
    const swept = await sweeping;
    expect(swept.expired).toEqual([]);
    expect((await claims.get(init.claimId)).status).toBe("uploaded");
    expect(await queue.count()).toBe(0);
  });
});

forEachEngine("UploadService under database faults", (ctx) => {
  it("aborts the multipart session when attaching its upload id fails, and the sweeper reaps the claim", async () => {
    const { db } = ctx();
    const clock = new ManualClock(START);
    const objects = new FaultyObjectStore(new MemoryObjectStore({ partSize: PART }));
    const faulty = new FaultyExecutor(db, (sql) =>
      sql.includes("SET upload_id") ? new BusyError("database is busy") : undefined,
    );
    const service = new UploadService({ database: faulty, objects, clock });
    await expect(service.initUpload("alice", { filename: "a.bin", size: 3 })).rejects.toBeInstanceOf(BusyError);
    expect(lifecycleCalls(objects)).toEqual(["initMultipart", "abortMultipart"]);
    const claims = new ClaimStore({ database: db, clock });
    const [claim] = await claims.scanExpired(START + 25 * 3_600_000, 10);
    expect(claim).toMatchObject({ status: "pending", uploadId: "" });
    clock.advance(25 * 3_600_000);
    const swept = await new ClaimSweeper({ database: db, objects, clock }).runOnce();
    expect(swept.expired.map((c) => c.id)).toEqual([claim?.id]);
  });

  it("several sweepers at once reap every expired claim exactly once", async () => {
    const { db } = ctx();
    const clock = new ManualClock(START);
    const objects = new MemoryObjectStore();
    const claims = new ClaimStore({ database: db, clock });
    for (let i = 0; i < 120; i++) await claims.create(newClaim({ expiresAt: START - 1 - i }));
    const sweepers = Array.from({ length: 3 }, () => new ClaimSweeper({ database: db, objects, clock, batchSize: 50 }));
    const swept: string[] = [];
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(sweepers.map((s) => s.runOnce()));
      for (const r of results) swept.push(...r.expired.map((c) => c.id));
    }
    expect(swept).toHaveLength(120);
    expect(new Set(swept).size).toBe(120);
    expect(await new DeleteQueue({ database: db, clock }).count()).toBe(120);
  });
});

describe("UploadService options", () => {
  const objects = () => new MemoryObjectStore({ partSize: PART, maxPartCount: 50 });

  it("open migrates a fresh database by default; migrate: false leaves it alone", async () => {
    const db = await openSqlite(":memory:");
    await UploadService.open({ database: db, objects: objects(), migrate: false });
    expect(await tableExists(db, "storeroom_upload_claims")).toBe(false);
    const service = await UploadService.open({ database: db, objects: objects() });
    expect(await tableExists(db, "storeroom_upload_claims")).toBe(true);
    expect((await service.initUpload("alice", { filename: "a.txt", size: 3 })).partCount).toBe(1);
    await db.close();
  });

  it.each([
    ["maxPendingClaims", 0],
    ["maxUploadSize", -1],
    ["claimTtlMs", 2.5],
  ] as const)(
    "%s: %s throws an InvalidArgumentError naming the option instead of using the default",
    async (option, value) => {
      const db = await openSqlite(":memory:");
      const attempt = UploadService.open({ database: db, objects: objects(), [option]: value });
      await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(new RegExp(`^${option} must be a positive integer`));
      expect(await tableExists(db, "storeroom_upload_claims")).toBe(false);
      await db.close();
    },
  );

  it("the deprecated db option still works; giving it beside database or neither is an error", async () => {
    const db = await openSqlite(":memory:");
    await db.migrate(uploadsMigrations);
    const legacy = new UploadService({ db, objects: objects() });
    expect((await legacy.initUpload("alice", { filename: "a.txt", size: 3 })).partCount).toBe(1);
    expect(() => new UploadService({ db, database: db, objects: objects() })).toThrow(
      /database and its deprecated alias db/,
    );
    expect(() => new UploadService({ objects: objects() })).toThrow(/^database is required/);
    await db.close();
  });
});
