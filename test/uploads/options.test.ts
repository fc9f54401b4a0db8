import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { type Database, openSqlite, tableExists } from "../../src/sql/index.js";
import {
  ClaimStore,
  ClaimSweeper,
  DeleteQueue,
  DeleteWorker,
  Outbox,
  OutboxDispatcher,
  ResumableUploads,
  reconcile,
  UploadPartStore,
  UploadService,
  uploadsMigrations,
} from "../../src/uploads/index.js";

type Case = [name: string, build: (db: Database) => unknown, message: RegExp];

/** Every bad option of the uploads constructors -> InvalidArgumentError whose message starts with the option. */
function cases(): Case[] {
  const objects = new MemoryObjectStore();
  const clock = { now: () => 0 };
  const noNow = { tick: () => 0 } as never;
  const out: Case[] = [];
  const simple = [
    ["ClaimStore", (o: object) => new ClaimStore(o as never)],
    ["UploadPartStore", (o: object) => new UploadPartStore(o as never)],
    ["DeleteQueue", (o: object) => new DeleteQueue(o as never)],
    ["Outbox", (o: object) => new Outbox(o as never)],
  ] as const;
  for (const [name, make] of simple) {
    out.push([`${name} clock without now()`, (db) => make({ database: db, clock: noNow }), /^clock must be a Clock/]);
    out.push([`${name} database of the wrong kind`, () => make({ database: {} }), /^database must be a storeroom/]);
  }
  const workers = [
    ["DeleteWorker", (o: object) => new DeleteWorker(o as never)],
    ["ClaimSweeper", (o: object) => new ClaimSweeper(o as never)],
  ] as const;
  for (const [name, make] of workers) {
    const base = (db: Database) => ({ database: db, objects, clock });
    out.push([`${name} objects missing`, (db) => make({ ...base(db), objects: undefined }), /^objects must be/]);
    out.push([`${name} objects not a store`, (db) => make({ ...base(db), objects: 5 }), /^objects must be/]);
    out.push([`${name} clock 5`, (db) => make({ ...base(db), clock: 5 }), /^clock must be a Clock/]);
    out.push([`${name} onError`, (db) => make({ ...base(db), onError: "log" }), /^onError must be a function/]);
    out.push([
      `${name} intervalMs -1`,
      (db) => make({ ...base(db), intervalMs: -1 }),
      /^intervalMs must be an integer/,
    ]);
    out.push([`${name} intervalMs 1.5`, (db) => make({ ...base(db), intervalMs: 1.5 }), /^intervalMs must be/]);
    out.push([`${name} batchSize 0`, (db) => make({ ...base(db), batchSize: 0 }), /^batchSize must be a positive/]);
  }
  out.push([
    "DeleteWorker queue of the wrong kind",
    (db) => new DeleteWorker({ database: db, objects, queue: {} as never }),
    /^queue must be a DeleteQueue/,
  ]);
  const dispatcher = (db: Database, o: object) => new OutboxDispatcher({ database: db, sinks: [], ...o } as never);
  const sink = { name: "a", deliver: async () => {} };
  out.push(["OutboxDispatcher sinks missing", (db) => dispatcher(db, { sinks: undefined }), /^sinks must be an array/]);
  out.push([
    "OutboxDispatcher sink without deliver",
    (db) => dispatcher(db, { sinks: [{ name: "a" }] }),
    /^sinks\[0\]/,
  ]);
  out.push([
    "OutboxDispatcher sink without a name",
    (db) => dispatcher(db, { sinks: [sink, { deliver: async () => {} }] }),
    /^sinks\[1\]\.name must be a non-empty string/,
  ]);
  out.push(["OutboxDispatcher duplicate sinks", (db) => dispatcher(db, { sinks: [sink, sink] }), /^sinks must have/]);
  out.push(["OutboxDispatcher clock", (db) => dispatcher(db, { clock: noNow }), /^clock must be a Clock/]);
  for (const callback of ["onError", "onFailure", "onDelivered"]) {
    out.push([
      `OutboxDispatcher ${callback}`,
      (db) => dispatcher(db, { [callback]: 1 }),
      new RegExp(`^${callback} must be a function`),
    ]);
  }
  out.push(["OutboxDispatcher intervalMs", (db) => dispatcher(db, { intervalMs: "1s" }), /^intervalMs must be/]);
  out.push(["OutboxDispatcher retentionMs 0", (db) => dispatcher(db, { retentionMs: 0 }), /^retentionMs must be/]);
  const service = (db: Database) => new UploadService({ database: db, objects, clock });
  const resumable = (db: Database, o: object) =>
    new ResumableUploads({ database: db, objects, uploads: service(db), clock, ...o } as never);
  out.push(["ResumableUploads objects", (db) => resumable(db, { objects: {} }), /^objects must be an ObjectStore/]);
  out.push(["ResumableUploads uploads", (db) => resumable(db, { uploads: undefined }), /^uploads must be/]);
  out.push(["ResumableUploads clock", (db) => resumable(db, { clock: 5 }), /^clock must be a Clock/]);
  out.push(["ResumableUploads leaseMs 0", (db) => resumable(db, { leaseMs: 0 }), /^leaseMs must be a positive/]);
  const upload = (db: Database, o: object) => new UploadService({ database: db, objects, ...o } as never);
  out.push(["UploadService objects", (db) => upload(db, { objects: undefined }), /^objects must be an ObjectStore/]);
  out.push(["UploadService clock", (db) => upload(db, { clock: noNow }), /^clock must be a Clock/]);
  out.push(["UploadService allowPublicUploads", (db) => upload(db, { allowPublicUploads: "yes" }), /^allowPublic/]);
  return out;
}

describe("uploads options", () => {
  it("every constructor refuses a bad option with an InvalidArgumentError naming it", async () => {
    const db = await openSqlite(":memory:");
    for (const [name, build, message] of cases()) {
      let error: unknown;
      try {
        build(db);
      } catch (err) {
        error = err;
      }
      expect(error, name).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message, name).toMatch(message);
    }
    await db.close();
  });

  it("UploadService.open refuses a bad option before migrating anything", async () => {
    const db = await openSqlite(":memory:");
    for (const bad of [{ objects: 5 }, { clock: {} }, { migrate: "no" }]) {
      await expect(
        UploadService.open({ database: db, objects: new MemoryObjectStore(), ...bad } as never),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await tableExists(db, "storeroom_upload_claims")).toBe(false);
    await db.close();
  });

  it("Outbox.start refuses a bad handler, interval or onError and is not left polling", async () => {
    const db = await openSqlite(":memory:");
    await db.migrate(uploadsMigrations);
    const outbox = new Outbox({ database: db });
    const handler = async () => {};
    expect(() => outbox.start(undefined as never)).toThrow(/^handler must be a function/);
    expect(() => outbox.start(handler, { intervalMs: -1 })).toThrow(/^intervalMs must be an integer/);
    expect(() => outbox.start(handler, { onError: 5 as never })).toThrow(/^onError must be a function/);
    // Not polling after the refusals: a valid start is accepted.
    outbox.start(handler, { intervalMs: 0 });
    await outbox.stop();
    await db.close();
  });

  it("reconcile refuses bad options before reading or moving anything", async () => {
    const db = await openSqlite(":memory:");
    await db.migrate(uploadsMigrations);
    const objects = new MemoryObjectStore();
    await objects.put("priv/old.bin", "x");
    const references = { referencedKeys: async () => new Set<string>() };
    const bad: [object, RegExp][] = [
      [{ dryRun: "false" }, /^dryRun must be a boolean/],
      [{ clock: 5 }, /^clock must be a Clock/],
      [{ objects: undefined }, /^objects must be an ObjectStore/],
      [{ references: {} }, /^references must be a ReferenceSource/],
      [{ references: { ...references, allReferences: 1 } }, /^references\.allReferences must be a function/],
      [{ onProgress: true }, /^onProgress must be a function/],
      [{ prefixes: "priv/" }, /^prefixes must be an array of strings/],
      [{ quarantinePrefix: 5 }, /^quarantinePrefix must be a non-empty folder/],
      [{ limit: 0 }, /^limit must be a positive integer/],
    ];
    for (const [options, message] of bad) {
      const attempt = reconcile({ database: db, objects, references, dryRun: false, minAgeMs: 1, ...options } as never);
      await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(message);
    }
    expect((await objects.list("")).objects.map((o) => o.key)).toEqual(["priv/old.bin"]);
    await db.close();
  });
});
