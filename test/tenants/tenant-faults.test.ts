import { describe, expect, it } from "vitest";
import { CorruptDatabaseError, UploadFailedError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantCloseError, TenantKey } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const isSegment = (key: string) => key.includes("/segments/");
const isManifest = (key: string) => key.endsWith("/manifest.json");
const isSnapshot = (key: string) => key.includes("/snapshots/");

async function ids(db: { all<T>(sql: string): Promise<T[]> }): Promise<number[]> {
  return (await db.all<{ id: number }>("SELECT id FROM notes ORDER BY id")).map((r) => r.id);
}

describe("faults on segment, snapshot and manifest writes", () => {
  const t = useTenantStores();

  it("sync: a write is acknowledged only once published; short outages are retried, long ones refuse it", async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const store = await t.open({ objectStore: objects, durability: "sync", syncIntervalMs: 0 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    objects.failNext("put", { match: isSegment }); // one failure: retried within the write
    await db.run("INSERT INTO notes VALUES (1)");
    objects.failNext("put", { match: isManifest, times: Number.POSITIVE_INFINITY });
    const refused = await db.run("INSERT INTO notes VALUES (2)").catch((e) => e);
    expect(refused).toBeInstanceOf(UploadFailedError);
    // Not acknowledged, but committed locally: the publication job publishes it once the store
    // answers and the retry pause (measured on the store's clock) is over.
    objects.clearFaults();
    t.clock.advance(30_000);
    expect(await store.publishPending()).toEqual({ done: 1, failed: 0 });
    expect(await ids(await (await t.open({ objectStore: objects.inner })).get(ada))).toEqual([1, 2]);
    expect(store.stats.replication.conflicts).toBe(0);
  });

  it("sync: a write tries its publication three times before it fails", async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const store = await t.open({ objectStore: objects, durability: "sync", syncIntervalMs: 0 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    const segmentPuts = () => objects.calls.filter((c) => c.method === "put" && isSegment(c.key)).length;
    let before = segmentPuts();
    objects.failNext("put", { match: isSegment, times: 2 });
    await db.run("INSERT INTO notes VALUES (1)");
    expect(segmentPuts() - before).toBe(3);
    before = segmentPuts();
    objects.failNext("put", { match: isSegment, times: 3 });
    await expect(db.run("INSERT INTO notes VALUES (2)")).rejects.toBeInstanceOf(UploadFailedError);
    expect(segmentPuts() - before).toBe(3);
    objects.clearFaults();
  });

  it("a lost manifest response is reconciled (no fork, no conflict); a timeout delays, never duplicates", async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const store = await t.open({ objectStore: objects, durability: "sync" });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    objects.failNext("put", { match: isManifest, when: "after" });
    await db.run("INSERT INTO notes VALUES (1)"); // the retry finds its own manifest stored
    let slow = true;
    objects.beforeCall = async (method, key) => {
      if (slow && method === "put" && isSegment(key)) await new Promise((r) => setTimeout(r, 100));
    };
    // Concurrent writes during a slow upload share the next segment (group commit).
    const before = store.stats.replication.segments;
    await Promise.all([2, 3, 4, 5, 6].map((id) => db.run("INSERT INTO notes VALUES ($1)", [id])));
    slow = false;
    expect(store.stats.replication.segments - before).toBeLessThanOrEqual(2);
    const other = await t.open({ objectStore: objects.inner });
    expect(await ids(await other.get(ada))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(store.stats.replication.conflicts).toBe(0);
  });

  it("a failed snapshot upload changes nothing the manifest names; publication goes on", async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const store = await t.open({ objectStore: objects, snapshotFraction: 0 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    await store.checkpoint(ada);
    objects.failNext("put", { match: isSnapshot, times: Number.POSITIVE_INFINITY });
    for (let id = 1; id <= 3; id++) {
      await db.run("INSERT INTO notes VALUES ($1)", [id]);
      await store.checkpoint(ada);
    }
    await expect.poll(() => t.failures.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(t.failures.every((f) => f.error instanceof UploadFailedError)).toBe(true);
    objects.clearFaults();
    expect(await ids(await (await t.open({ objectStore: objects.inner })).get(ada))).toEqual([1, 2, 3]);
  });

  it("a segment uploaded whose manifest write failed, then a crash (unclean close): the restart publishes everything", async () => {
    const inner = new MemoryObjectStore();
    const objects = new FaultyObjectStore(inner);
    const cacheRoot = t.newCacheRoot();
    const store = await t.open({ objectStore: objects, cacheRoot });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    await store.checkpoint(ada);
    await db.run("INSERT INTO notes VALUES (1)");
    objects.failNext("put", { match: isManifest, times: Number.POSITIVE_INFINITY });
    await expect(store.checkpoint(ada)).rejects.toBeInstanceOf(UploadFailedError);
    expect((await objectKeys(inner, ada.prefix())).filter(isSegment)).toHaveLength(2); // the second is named by nothing
    // close cannot publish: the database is closed anyway, folding its WAL into the file.
    await expect(store.close()).rejects.toBeInstanceOf(TenantCloseError);
    objects.clearFaults();
    const restarted = await t.open({ objectStore: inner, cacheRoot });
    await restarted.recovered();
    expect(await ids(await (await t.open({ objectStore: inner })).get(ada))).toEqual([1]);
    expect(restarted.stats.replication.conflicts).toBe(0);
  });

  it("a clean close while the restart is still recovering a crashed cache publishes every tenant, reached or not", async () => {
    const inner = new MemoryObjectStore();
    const objects = new FaultyObjectStore(inner);
    const cacheRoot = t.newCacheRoot();
    const store = await t.open({ objectStore: objects, cacheRoot });
    const users = Array.from({ length: 6 }, (_, i) => TenantKey.user("acme", `u${i}`));
    for (const key of users) {
      const db = await store.get(key);
      await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
      await store.checkpoint(key);
      await db.run("INSERT INTO notes VALUES (1)");
    }
    // Nothing can be published: every tenant is left in the cache with an unpublished write.
    objects.failNext("put", { times: Number.POSITIVE_INFINITY });
    await expect(store.close()).rejects.toBeInstanceOf(TenantCloseError);
    objects.clearFaults();
    // The restart's recovery is held at its first upload while the store is closed.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached: () => void = () => undefined;
    const uploading = new Promise<void>((resolve) => (reached = resolve));
    objects.beforeCall = async (method, key) => {
      if (method !== "put" || !(isSegment(key) || isSnapshot(key) || isManifest(key))) return;
      reached();
      await held;
    };
    const restarted = await t.open({ objectStore: objects, cacheRoot });
    await uploading;
    const closing = restarted.close();
    release();
    await closing;
    const elsewhere = await t.open({ objectStore: inner });
    for (const key of users) expect(await ids(await elsewhere.get(key))).toEqual([1]);
  });

  it("never serves a damaged segment or snapshot: hydration fails with CorruptDatabaseError", async () => {
    const objects = t.objects();
    const store = await t.open();
    await store.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
      await db.run("INSERT INTO notes VALUES (1)");
    });
    await store.close();
    const keys = await objectKeys(objects, ada.prefix());
    for (const damaged of [keys.find(isSegment), keys.find(isSnapshot)] as string[]) {
      const original = await objects.get(damaged);
      const bytes = Buffer.concat(await (original?.body.toArray() ?? []));
      const flipped = Buffer.from(bytes);
      flipped[flipped.byteLength - 5] = (flipped[flipped.byteLength - 5] as number) ^ 0xff;
      await objects.put(damaged, flipped);
      const reader = await t.open();
      await expect(reader.get(ada)).rejects.toBeInstanceOf(CorruptDatabaseError);
      expect(reader.stats.resident).toBe(0);
      await objects.put(damaged, bytes);
    }
    expect(await ids(await (await t.open()).get(ada))).toEqual([1]);
  });
});
