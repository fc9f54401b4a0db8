import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConflictError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { TenantConflictError } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { ada, keptNotes, notes, race } from "./cas-race.js";
import { useTenantStores } from "./tenant-fixture.js";

describe("CAS: two stores, one tenant", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-tenants-cas-");

  for (const seeded of [false, true]) {
    it(`exactly one checkpoint wins on a FileObjectStore (${seeded ? "existing object: If-Match" : "first upload: If-None-Match"})`, async () => {
      const objects = new FileObjectStore({ root: join(root, `objects-${seeded}`) });
      await race(t.open({ objectStore: objects }), t.open({ objectStore: objects }), objects, seeded);
      await objects.close();
    });

    it(`exactly one checkpoint wins on a MemoryObjectStore (${seeded ? "If-Match" : "If-None-Match"})`, async () => {
      await race(t.open(), t.open(), t.objects(), seeded);
    });
  }

  it("surfaces a conflict found by background work through onReapFailure and once on the next call", async () => {
    const a = t.open();
    const b = t.open();
    const dbA = await a.get(ada);
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await a.checkpoint(ada);
    const dbB = await b.get(ada);
    await dbA.run("INSERT INTO notes VALUES ('a')");
    await a.checkpoint(ada);
    await dbB.run("INSERT INTO notes VALUES ('b')");
    t.clock.advance(1);
    const pass = await b.checkpointDue().catch((e) => e);
    expect(pass).toEqual({ done: 0, failed: 0 }); // intervals are disabled in the fixture
    await b.markDirty(ada, 1000); // crosses checkpointWrites: background checkpoint
    await expect.poll(() => t.failures.length).toBe(1);
    const conflict = t.failures[0]?.error as TenantConflictError;
    expect(conflict).toBeInstanceOf(TenantConflictError);
    await expect(dbB.run("INSERT INTO notes VALUES ('c')")).rejects.toBe(conflict);
    expect(await notes(dbB)).toEqual(["a"]); // re-hydrated the winner's version
    expect(await keptNotes(conflict.keptAt)).toEqual(["b"]);
  });

  it("a multipart checkpoint also loses when the object moved before it started", async () => {
    const a = t.open({ multipartThresholdBytes: 1, checkpointWrites: 1e9 });
    const b = t.open({ multipartThresholdBytes: 1, checkpointWrites: 1e9 });
    const dbA = await a.get(ada);
    const dbB = await b.get(ada);
    for (const db of [dbA, dbB]) {
      await db.run("CREATE TABLE notes (body TEXT)");
      await db.run("INSERT INTO notes SELECT hex(randomblob(100)) FROM generate_series(1, 2000)").catch(async () => {
        await db.transaction(async (tx) => {
          for (let i = 0; i < 2000; i++) await tx.run("INSERT INTO notes VALUES (hex(randomblob(100)))");
        });
      });
    }
    await a.checkpoint(ada);
    await expect(b.checkpoint(ada)).rejects.toBeInstanceOf(TenantConflictError);
    const restored = t.open();
    expect(
      ((await (await restored.get(ada)).get<{ n: number }>("SELECT count(*) AS n FROM notes")) as { n: number }).n,
    ).toBe(2000);
  });

  const backends: [string, (dir: string) => ObjectStore][] = [
    ["MemoryObjectStore", () => new MemoryObjectStore({ partSize: 16 * 1024 })],
    ["FileObjectStore", (dir) => new FileObjectStore({ root: dir, partSize: 16 * 1024 })],
  ];
  for (const [name, make] of backends) {
    it(`a write landing between a multipart checkpoint's init and its completion is detected (${name})`, async () => {
      const objects = make(join(root, `window-${name}`));
      const paused = new FaultyObjectStore(objects);
      const a = t.open({ objectStore: objects, multipartThresholdBytes: 1, checkpointWrites: 1e9 });
      const b = t.open({ objectStore: paused, multipartThresholdBytes: 1, checkpointWrites: 1e9 });
      await a.withTenant(ada, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await db.run("CREATE TABLE filler (body TEXT)");
        await db.transaction(async (tx) => {
          for (let i = 0; i < 500; i++) await tx.run("INSERT INTO filler VALUES (hex(randomblob(100)))");
        });
      });
      await a.evict(ada);
      const dbA = await a.get(ada);
      const dbB = await b.get(ada);
      await dbA.run("INSERT INTO notes VALUES ('from a')");
      await dbB.run("INSERT INTO notes VALUES ('from b')");
      // A writes (its own conditional checkpoint) after B's parts are up, right before B completes.
      let intruded = false;
      paused.beforeCall = async (method) => {
        if (method !== "completeMultipart" || intruded) return;
        intruded = true;
        expect((await a.checkpoint(ada)).uploaded).toBe(true);
      };
      const lost = await b.checkpoint(ada).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(intruded).toBe(true);
      expect(paused.calls.filter((c) => c.method === "putPart").length).toBeGreaterThan(1);
      expect(lost).toBeInstanceOf(TenantConflictError);
      expect(lost).toBeInstanceOf(ConflictError);
      const conflict = lost as TenantConflictError;
      expect(paused.calls.map((c) => c.method)).toContain("abortMultipart");
      // A's write is in object storage; B's is in the copy it kept aside.
      expect((await objects.head(ada.objectKey()))?.etag).toBe((await a.inspect(ada)).etag);
      expect(await notes(await t.open({ objectStore: objects }).get(ada))).toEqual(["from a"]);
      await b.evict(ada).catch((err) => expect(err).toBe(conflict));
      expect(await keptNotes(conflict.keptAt)).toEqual(["from b"]);
      await objects.close();
    });
  }
});
