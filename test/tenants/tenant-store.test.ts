import { existsSync, readdirSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { BusyError, ClosedError, CorruptDatabaseError, InvalidKeyError, UploadFailedError } from "../../src/errors.js";
import {
  readGatewayIdentity,
  runWithGatewayIdentity,
  TenantCloseError,
  TenantKey,
  tenantKeyFromIdentity,
} from "../../src/tenants/index.js";
import { FaultyObjectStore, InjectedFault } from "../support/faulty-object-store.js";
import { objectBytes, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");

async function count(db: { get<T>(sql: string): Promise<T | undefined> }): Promise<number> {
  return ((await db.get<{ n: number }>("SELECT count(*) AS n FROM notes")) as { n: number }).n;
}

describe("TenantStore: hydrate, cache, isolation", () => {
  const t = useTenantStores();

  it("creates a new empty database on a miss, without uploading anything", async () => {
    const store = t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    expect(await count(db)).toBe(0);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(true);
    expect(await t.objects().head(ada.objectKey())).toBeNull();
  });

  it("rejects a poisoned object with CorruptDatabaseError, leaving it and the cache untouched", async () => {
    const objects = t.objects();
    await objects.put(ada.objectKey(), "this is not a sqlite database at all");
    const before = await objects.head(ada.objectKey());
    const store = t.open();
    await expect(store.get(ada)).rejects.toBeInstanceOf(CorruptDatabaseError);
    expect(await objects.head(ada.objectKey())).toEqual(before);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(false);
    expect(store.stats.resident).toBe(0);
    await objects.put(bob.objectKey(), "SQLite");
    await expect(store.get(bob)).rejects.toBeInstanceOf(CorruptDatabaseError);
  });

  it("accepts an empty object as an empty database", async () => {
    await t.objects().put(ada.objectKey(), new Uint8Array(0));
    const store = t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    expect(await count(db)).toBe(0);
  });

  it("validates the key before touching the filesystem or object storage", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects });
    for (const bad of [TenantKey.user("../etc", "x"), { orgId: "acme", userId: "A B" }, TenantKey.org("")]) {
      await expect(store.get(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.withTenant(bad, async () => 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.checkpoint(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.evict(bad)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(store.list({ orgId: "../x" })).rejects.toBeInstanceOf(InvalidKeyError);
    expect(objects.calls).toEqual([]);
    expect(readdirSync(store.cacheRoot)).toEqual([".lock"]);
  });

  it("serves a cache hit without touching object storage", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects });
    const first = await store.get(ada);
    await first.run("CREATE TABLE notes (body TEXT)");
    const calls = objects.calls.length;
    const second = await store.get(ada);
    await second.run("INSERT INTO notes VALUES ('x')");
    expect(await count(first)).toBe(1);
    expect(objects.calls.length).toBe(calls);
  });

  it("keeps tenants isolated", async () => {
    const store = t.open();
    const a = await store.get(ada);
    const b = await store.get(bob);
    const org = await store.get(TenantKey.org("acme"));
    for (const db of [a, b, org]) await db.run("CREATE TABLE notes (body TEXT)");
    await a.run("INSERT INTO notes VALUES ('ada only')");
    expect(await count(a)).toBe(1);
    expect(await count(b)).toBe(0);
    expect(await count(org)).toBe(0);
  });

  it("resolves the request's user and org databases from the gateway identity", async () => {
    const store = t.open();
    expect(() => tenantKeyFromIdentity()).toThrow(InvalidKeyError); // no identity bound
    const identity = readGatewayIdentity({ "x-org-id": "acme", "x-user-id": "ada" });
    await runWithGatewayIdentity(identity, async () => {
      const user = await store.get(tenantKeyFromIdentity());
      const org = await store.get(tenantKeyFromIdentity(undefined, "org"));
      expect(user.key.objectKey()).toBe("acme/users/ada.db");
      expect(org.key.objectKey()).toBe("acme/org.db");
    });
  });

  it("hydrates a tenant once for many concurrent cold gets, and serves concurrent readers", async () => {
    const seed = t.open();
    await seed.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      for (let i = 0; i < 20; i++) await db.run("INSERT INTO notes VALUES ($1)", [`n${i}`]);
    });
    await seed.close();
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects });
    const dbs = await Promise.all(Array.from({ length: 25 }, () => store.get(ada)));
    expect(objects.count("get")).toBe(1);
    const counts = await Promise.all(dbs.flatMap((db) => [count(db), count(db)]));
    expect(new Set(counts)).toEqual(new Set([20]));
  });
});

describe("TenantStore: checkpoint, eviction, close", () => {
  const t = useTenantStores();

  it("checkpoints to object storage, and a second store hydrates the same rows", async () => {
    const store = t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('one')");
    const result = await store.checkpoint(ada);
    expect(result.uploaded).toBe(true);
    expect((await objectBytes(t.objects(), ada.objectKey()))?.subarray(0, 15).toString()).toBe("SQLite format 3");
    expect((await store.checkpoint(ada)).uploaded).toBe(false); // clean now
    const other = t.open();
    expect(await count(await other.get(ada))).toBe(1);
  });

  it("persists on eviction and re-hydrates on the next call, through the same view", async () => {
    const store = t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('kept')");
    await store.evict(ada);
    expect(store.stats.resident).toBe(0);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(false); // no disk budget: removed
    expect(await t.objects().head(ada.objectKey())).not.toBeNull();
    expect(await count(db)).toBe(1); // the old view re-hydrates transparently
    expect(store.stats.resident).toBe(1);
  });

  it("flushes every dirty tenant on close; close is idempotent and later calls throw ClosedError", async () => {
    const store = t.open();
    for (const key of [ada, bob]) {
      await store.withTenant(key, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await db.run("INSERT INTO notes VALUES ('x')");
      });
    }
    await store.close();
    await store.close();
    expect((await store.list({ orgId: "acme" })).map((l) => l.key.toString())).toEqual([
      "acme/users/ada",
      "acme/users/bob",
    ]);
    await expect(store.get(ada)).rejects.toBeInstanceOf(ClosedError);
    expect(await count(await t.open().get(bob))).toBe(1);
  });

  it("surfaces an upload error from evict, keeps the tenant resident and dirty, and succeeds on retry", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('x')");
    objects.failNext("put");
    const err = await store.evict(ada).catch((e) => e);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.cause).toBeInstanceOf(InjectedFault);
    const info = await store.inspect(ada);
    expect(info.resident).toBe(true);
    expect(info.dirtyChanges).toBeGreaterThan(0);
    await db.run("INSERT INTO notes VALUES ('y')"); // still usable
    await store.evict(ada);
    expect((await store.inspect(ada)).resident).toBe(false);
    expect(await count(await t.open().get(ada))).toBe(2);
  });

  it("aggregates every failed tenant into one close error and keeps their files for the next store", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const cacheRoot = t.newCacheRoot();
    const store = t.open({ objectStore: objects, cacheRoot });
    const keys = [ada, bob, TenantKey.user("acme", "cy")];
    for (const key of keys) {
      await store.withTenant(key, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await db.run("INSERT INTO notes VALUES ('x')");
      });
    }
    objects.failNext("put", { times: 2, match: (k) => k !== bob.objectKey() });
    const err = await store.close().catch((e) => e);
    expect(err).toBeInstanceOf(TenantCloseError);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.message).toContain("flushed 1/3");
    expect(err.failures.map((f: { key: TenantKey }) => f.key.toString()).sort()).toEqual([
      "acme/users/ada",
      "acme/users/cy",
    ]);
    // The next store on the same cache adopts the unflushed copies and uploads them.
    const next = t.open({ cacheRoot, objectStore: t.objects() });
    expect(await count(await next.get(ada))).toBe(1);
    expect((await next.inspect(ada)).dirtyChanges).toBeGreaterThan(0);
    expect(await count(await next.get(TenantKey.user("acme", "cy")))).toBe(1);
    await next.close();
    expect(await count(await t.open().get(TenantKey.user("acme", "cy")))).toBe(1);
  });

  it("returns the eviction error to the LRU and onReapFailure, and recovers on a later pass", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects, lruSize: 1 });
    await store.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      await db.run("INSERT INTO notes VALUES ('x')");
    });
    objects.failNext("put");
    await store.get(bob); // over capacity: ada's upload fails, bob is still served
    expect(t.failures.map((f) => f.key)).toEqual(["acme/users/ada"]);
    expect(t.failures[0]?.error).toBeInstanceOf(UploadFailedError);
    expect(store.stats.resident).toBe(2);
    await store.get(TenantKey.user("acme", "cy")); // next eviction pass retries
    expect((await store.inspect(ada)).resident).toBe(false);
    expect(await count(await t.open().get(ada))).toBe(1);
  });

  it("markDirty forces an upload of changes the store cannot see", async () => {
    const store = t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    expect((await store.inspect(ada)).dirtyChanges).toBe(0);
    await store.markDirty(ada, 3);
    expect((await store.inspect(ada)).dirtyChanges).toBe(3);
    expect((await store.checkpoint(ada)).uploaded).toBe(true);
    await expect(store.markDirty(ada, 0)).rejects.toThrow();
    await store.markDirty(bob); // not resident: nothing to upload
    expect((await store.inspect(bob)).resident).toBe(false);
  });

  it("counts writes automatically, including DDL, and checkpoints at checkpointWrites", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects, checkpointWrites: 5 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    expect((await store.inspect(ada)).dirtyChanges).toBe(1);
    for (let i = 0; i < 4; i++) await db.run("INSERT INTO notes VALUES ($1)", [String(i)]);
    await vi.waitFor(async () => expect((await store.inspect(ada)).dirtyChanges).toBe(0));
    expect(objects.count("put")).toBe(1);
  });

  it("holds back write-count retries for a second after a failed upload", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = t.open({ objectStore: objects, checkpointWrites: 2 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    objects.failNext("put");
    await db.run("INSERT INTO notes VALUES ('1')"); // crosses the threshold: the upload fails
    await vi.waitFor(() => expect(t.failures).toHaveLength(1));
    for (let i = 0; i < 5; i++) await db.run("INSERT INTO notes VALUES ('more')");
    expect(objects.count("put")).toBe(1);
    t.clock.advance(1000);
    await db.run("INSERT INTO notes VALUES ('retry')");
    await vi.waitFor(async () => expect((await store.inspect(ada)).dirtyChanges).toBe(0));
    expect(objects.count("put")).toBe(2);
  });

  it("checkpoints dirty tenants after checkpointIntervalMs", async () => {
    const store = t.open({ checkpointIntervalMs: 60_000 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    expect(await store.checkpointDue()).toEqual({ done: 0, failed: 0 });
    t.clock.advance(60_000);
    expect(await store.checkpointDue()).toEqual({ done: 1, failed: 0 });
    expect(await t.objects().head(ada.objectKey())).not.toBeNull();
  });

  it("locks its cache directory against a second store until close, and lists cached files", async () => {
    const cacheRoot = t.newCacheRoot();
    const store = t.open({ cacheRoot });
    expect(() => t.open({ cacheRoot })).toThrow(BusyError);
    await store.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await store.withTenant(TenantKey.org("acme"), (db) => db.run("CREATE TABLE notes (body TEXT)"));
    const cached = await store.listCached();
    expect(cached.map((c) => [c.key.toString(), c.state])).toEqual([
      ["acme/org", { etag: null, open: true }],
      ["acme/users/ada", { etag: null, open: true }],
    ]);
    await store.close();
    const again = t.open({ cacheRoot });
    expect(await again.listCached()).toEqual([]);
  });

  it("rejects bad options with InvalidArgumentError", () => {
    expect(() => t.open({ lruSize: 0 })).toThrow(/lruSize/);
    expect(() => t.open({ idleTtlMs: -1 })).toThrow(/idleTtlMs/);
    expect(() => t.open({ checkpointWrites: Number.NaN })).toThrow(/checkpointWrites/);
    expect(() => t.open({ objectStore: undefined as never })).toThrow(/objectStore/);
  });
});
