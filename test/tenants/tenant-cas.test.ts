import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConflictError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey, type TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

async function notes(db: { all<T>(sql: string): Promise<T[]> }): Promise<string[]> {
  return (await db.all<{ body: string }>("SELECT body FROM notes ORDER BY body")).map((r) => r.body);
}

async function keptNotes(path: string): Promise<string[]> {
  const db = await openSqlite(path, { readonly: true });
  try {
    return await notes(db);
  } finally {
    await db.close();
  }
}

/** Two stores on one object store write the same tenant; both checkpoint at once. */
async function race(a: TenantStore, b: TenantStore, objects: ObjectStore, seeded: boolean): Promise<void> {
  if (seeded) {
    await a.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.evict(ada);
  }
  const dbA = await a.get(ada);
  const dbB = await b.get(ada);
  if (!seeded) {
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await dbB.run("CREATE TABLE notes (body TEXT)");
  }
  await dbA.run("INSERT INTO notes VALUES ('from a')");
  await dbB.run("INSERT INTO notes VALUES ('from b')");
  const results = await Promise.allSettled([a.checkpoint(ada), b.checkpoint(ada)]);
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  expect(won).toHaveLength(1);
  expect(lost).toHaveLength(1);
  const conflict = lost[0]?.reason as TenantConflictError;
  expect(conflict).toBeInstanceOf(TenantConflictError);
  expect(conflict).toBeInstanceOf(ConflictError);
  const [winner, loser] = results[0]?.status === "fulfilled" ? [a, b] : [b, a];
  const winnerNote = winner === a ? "from a" : "from b";
  const loserNote = winner === a ? "from b" : "from a";
  // The winner's write is in object storage; the loser's is in the copy it kept aside.
  expect(await notes(await winner.get(ada))).toEqual([winnerNote]);
  await loser.evict(ada).catch((err) => expect(err).toBe(conflict)); // waits for the set-aside
  expect(existsSync(conflict.keptAt)).toBe(true);
  expect(await keptNotes(conflict.keptAt)).toEqual([loserNote]);
  // The loser can re-hydrate the winner's version and carry on from it.
  const fresh = await loser.get(ada);
  expect(await notes(fresh)).toEqual([winnerNote]);
  await fresh.run("INSERT INTO notes VALUES ('merged')");
  expect((await loser.checkpoint(ada)).uploaded).toBe(true);
  expect((await objects.head(ada.objectKey()))?.etag).toBe((await loser.inspect(ada)).etag);
}

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

  it("a multipart checkpoint also loses when the object moved (head check before completion)", async () => {
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
});
