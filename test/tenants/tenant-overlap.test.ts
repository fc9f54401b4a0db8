import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { TenantConflictError, type TenantStore } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { ada, fileNotes, notes, race } from "./overlap.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

/** Inserts `name-0..n-1`, retrying each insert after a conflict (a client would); returns the acknowledged rows. */
async function writer(store: TenantStore, name: string, n: number, acked: Set<string>): Promise<number> {
  let conflicts = 0;
  for (let i = 0; i < n; i++) {
    for (;;) {
      try {
        await (await store.get(ada)).run("INSERT INTO notes VALUES ($1)", [`${name}-${i}`]);
        acked.add(`${name}-${i}`);
        break;
      } catch (err) {
        if (!(err instanceof TenantConflictError)) throw err;
        conflicts += 1;
      }
    }
  }
  return conflicts;
}

async function recordedRows(store: TenantStore, dir: string): Promise<Set<string>> {
  const rows = new Set<string>();
  for (const record of await store.conflicts()) {
    const to = join(dir, `${record.id}.db`);
    await store.exportConflict(record.id, to);
    for (const row of await fileNotes(to)) rows.add(row);
  }
  return rows;
}

describe("overlap: two stores write one tenant through one object store", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-tenants-overlap-");

  for (const seeded of [false, true]) {
    it(`exactly one publication wins on a FileObjectStore (${seeded ? "existing manifest: If-Match" : "first publication: If-None-Match"})`, async () => {
      const objects = new FileObjectStore({ root: join(root, `race-${seeded}`) });
      await race(await t.open({ objectStore: objects }), await t.open({ objectStore: objects }), objects, seeded);
      await objects.close();
    });

    it(`exactly one publication wins on a MemoryObjectStore (${seeded ? "If-Match" : "If-None-Match"})`, async () => {
      await race(await t.open(), await t.open(), t.objects(), seeded);
    });
  }

  it("raises a conflict found in the background through onError, then once on the next call", async () => {
    const a = await t.open();
    const b = await t.open({ syncIntervalMs: 5 });
    const dbA = await a.get(ada);
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await a.checkpoint(ada);
    const dbB = await b.get(ada);
    await dbA.run("INSERT INTO notes VALUES ('a')");
    await a.checkpoint(ada);
    await dbB.run("INSERT INTO notes VALUES ('b')"); // acknowledged locally; published in the background
    await expect.poll(() => t.failures.length, { timeout: 5000 }).toBe(1);
    const conflict = t.failures[0]?.error as TenantConflictError;
    expect(conflict).toBeInstanceOf(TenantConflictError);
    await expect(dbB.run("INSERT INTO notes VALUES ('c')")).rejects.toBe(conflict);
    expect(await notes(dbB)).toEqual(["a"]); // re-hydrated the winner's version
    expect(await fileNotes(conflict.keptAt)).toEqual(["b"]);
  });

  it("sync: under concurrent writers on both sides no acknowledged write is lost, and conflicts happen", async () => {
    const objects = new FileObjectStore({ root: join(root, "sync-load") });
    const a = await t.open({ objectStore: objects, durability: "sync" });
    const b = await t.open({ objectStore: objects, durability: "sync" });
    await a.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    const acked = new Set<string>();
    const conflicts = await Promise.all(
      ["a1", "a2", "a3", "b1", "b2", "b3"].map((name) => writer(name[0] === "a" ? a : b, name, 15, acked)),
    );
    await a.close();
    await b.close();
    const check = await t.open({ objectStore: objects });
    const rows = new Set(await notes(await check.get(ada)));
    const lost = [...acked].filter((row) => !rows.has(row));
    const total = conflicts.reduce((x, y) => x + y, 0);
    console.log(
      `sync overlap: ${acked.size} acknowledged, ${lost.length} lost, ${total} writes refused with a conflict`,
    );
    expect(acked.size).toBe(90);
    expect(lost).toEqual([]);
    expect(total).toBeGreaterThan(0);
    expect(a.stats.replication.conflicts + b.stats.replication.conflicts).toBeGreaterThan(0);
    await objects.close();
  });

  it("async: every acknowledged write the tenant lost is in a conflict record", async () => {
    const objects = new FileObjectStore({ root: join(root, "async-load") });
    const a = await t.open({ objectStore: objects, syncIntervalMs: 2 });
    const b = await t.open({ objectStore: objects, syncIntervalMs: 2 });
    await a.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.checkpoint(ada);
    const acked = new Set<string>();
    await Promise.all(["a1", "a2", "b1", "b2"].map((name) => writer(name[0] === "a" ? a : b, name, 25, acked)));
    await a.close().catch(() => undefined);
    await b.close().catch(() => undefined);
    const check = await t.open({ objectStore: objects });
    const rows = new Set(await notes(await check.get(ada)));
    const lost = [...acked].filter((row) => !rows.has(row));
    const recorded = new Set([...(await recordedRows(a, root)), ...(await recordedRows(b, root))]);
    const records = (await a.conflicts()).length + (await b.conflicts()).length;
    console.log(`async overlap: ${acked.size} acknowledged, ${lost.length} lost, all in ${records} conflict record(s)`);
    expect(lost.filter((row) => !recorded.has(row))).toEqual([]);
    await objects.close();
  });

  it("a writer overtaken between its segment and its manifest is fenced; its orphan objects are collected", async () => {
    const paused = new FaultyObjectStore(t.objects());
    const a = await t.open({ snapshotFraction: 0, orphanGraceMs: 0 });
    const b = await t.open({ objectStore: paused });
    await a.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.checkpoint(ada);
    const dbB = await b.get(ada);
    await dbB.run("INSERT INTO notes VALUES ('b')");
    let overtaken = false;
    paused.beforeCall = async (method, key) => {
      if (method !== "put" || !key.endsWith("manifest.json") || overtaken) return;
      overtaken = true;
      await (await a.get(ada)).run("INSERT INTO notes VALUES ('a')");
      await a.checkpoint(ada);
    };
    await expect(b.checkpoint(ada)).rejects.toBeInstanceOf(TenantConflictError);
    const orphans = async () => (await objectKeys(t.objects(), ada.prefix())).filter((k) => k.includes(b.writerId));
    expect(await orphans()).toHaveLength(1); // b's segment, named by no manifest
    // a's next publication takes a snapshot (snapshotFraction 0) and collects what no manifest names.
    await (await a.get(ada)).run("INSERT INTO notes VALUES ('a2')");
    await a.checkpoint(ada);
    await expect.poll(orphans, { timeout: 5000 }).toEqual([]);
    expect(await notes(await (await t.open()).get(ada))).toEqual(["a", "a2"]);
  });
});
