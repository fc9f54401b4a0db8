import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { TenantConflictError } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { ada, keptNotes, notes, race, writeIntoMultipartWindow } from "./cas-race.js";
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
      const options = { multipartThresholdBytes: 1, checkpointWrites: 1e9 };
      await writeIntoMultipartWindow(
        t.open({ objectStore: objects, ...options }),
        t.open({ objectStore: paused, ...options }),
        paused,
        t.open({ objectStore: objects }),
      );
      await objects.close();
    });
  }
});
