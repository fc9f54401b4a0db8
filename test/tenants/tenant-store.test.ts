import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  BusyError,
  ClosedError,
  CorruptDatabaseError,
  InvalidArgumentError,
  InvalidKeyError,
  UploadFailedError,
} from "../../src/errors.js";
import { MigrationSet } from "../../src/sql/index.js";
import {
  readGatewayIdentity,
  runWithGatewayIdentity,
  TenantCloseError,
  TenantKey,
  tenantKeyFromIdentity,
} from "../../src/tenants/index.js";
import { FaultyObjectStore, InjectedFault } from "../support/faulty-object-store.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");

async function count(db: { get<T>(sql: string): Promise<T | undefined> }): Promise<number> {
  return ((await db.get<{ n: number }>("SELECT count(*) AS n FROM notes")) as { n: number }).n;
}

describe("TenantStore: hydrate, cache, isolation", () => {
  const t = useTenantStores();

  it("creates a new empty database on a miss, uploads nothing while only its schema is set up, and sets it up again after eviction", async () => {
    const store = await t.open();
    const db = await store.get(ada);
    const schema = new MigrationSet("notes").add({
      id: "001",
      up: async (tx) => {
        await tx.run("CREATE TABLE notes (body TEXT)");
      },
    });
    await db.migrate(schema);
    expect(await count(db)).toBe(0);
    await store.evict(ada);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(false);
    expect(await objectKeys(t.objects(), "tenants/")).toEqual([]);
    // The view applies its migrations again to the fresh copy; the first real write publishes the
    // tenant: a snapshot, a segment, the manifest.
    await db.run("INSERT INTO notes VALUES ('x')");
    await store.checkpoint(ada);
    const keys = await objectKeys(t.objects(), ada.prefix());
    expect(keys.map((k) => k.slice(ada.prefix().length).split("/")[0])).toEqual([
      "manifest.json",
      "segments",
      "snapshots",
    ]);
  });

  it("rejects a poisoned old-layout object with CorruptDatabaseError, leaving it and the cache untouched", async () => {
    const objects = t.objects();
    await objects.put(ada.objectKey(), "this is not a sqlite database at all");
    const before = await objects.head(ada.objectKey());
    const store = await t.open();
    await expect(store.get(ada)).rejects.toBeInstanceOf(CorruptDatabaseError);
    expect(await objects.head(ada.objectKey())).toEqual(before);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(false);
    expect(store.stats.resident).toBe(0);
    await objects.put(bob.objectKey(), "SQLite");
    await expect(store.get(bob)).rejects.toBeInstanceOf(CorruptDatabaseError);
  });

  it("rejects a manifest that is not one with CorruptDatabaseError, serving nothing", async () => {
    await t.objects().put(`${ada.prefix()}manifest.json`, JSON.stringify({ format: 1, snapshots: [] }));
    const store = await t.open();
    await expect(store.get(ada)).rejects.toBeInstanceOf(CorruptDatabaseError);
    expect(store.stats.resident).toBe(0);
  });

  it("validates the key before touching the filesystem or object storage", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects });
    objects.calls.length = 0; // the conditional-write probe at open
    for (const bad of [TenantKey.user("../etc", "x"), { orgId: "acme", userId: "A B" }, TenantKey.org("")]) {
      await expect(store.get(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.withTenant(bad, async () => 1)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.checkpoint(bad)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.evict(bad)).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(store.list({ orgId: "../x" })).rejects.toBeInstanceOf(InvalidKeyError);
    expect(objects.calls).toEqual([]);
    expect(readdirSync(store.cacheRoot).sort()).toEqual([".lock", ".writer"]);
  });

  it("serves a cache hit without touching object storage", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects });
    const first = await store.get(ada);
    await first.run("CREATE TABLE notes (body TEXT)");
    const calls = objects.calls.length;
    const second = await store.get(ada);
    await second.run("INSERT INTO notes VALUES ('x')");
    expect(await count(first)).toBe(1);
    expect(objects.calls.length).toBe(calls);
  });

  it("keeps tenants isolated, locally and under their own prefixes", async () => {
    const store = await t.open();
    const a = await store.get(ada);
    const b = await store.get(bob);
    const org = await store.get(TenantKey.org("acme"));
    for (const db of [a, b, org]) await db.run("CREATE TABLE notes (body TEXT)");
    await a.run("INSERT INTO notes VALUES ('ada only')");
    expect(await count(a)).toBe(1);
    expect(await count(b)).toBe(0);
    expect(await count(org)).toBe(0);
    await store.close();
    const prefixes = new Set((await objectKeys(t.objects(), "")).map((k) => k.split("/").slice(0, 4).join("/")));
    expect([...prefixes].sort()).toEqual(
      [
        "tenants/acme/org/manifest.json",
        "tenants/acme/org/segments",
        "tenants/acme/org/snapshots",
        "tenants/acme/users/ada",
        "tenants/acme/users/bob",
      ].sort(),
    );
  });

  it("resolves the request's user and org databases from the gateway identity", async () => {
    const store = await t.open();
    expect(() => tenantKeyFromIdentity()).toThrow(InvalidKeyError); // no identity bound
    const identity = readGatewayIdentity({ "x-org-id": "acme", "x-user-id": "ada" });
    await runWithGatewayIdentity(identity, async () => {
      const user = await store.get(tenantKeyFromIdentity());
      const org = await store.get(tenantKeyFromIdentity(undefined, "org"));
      expect(user.key.prefix()).toBe("tenants/acme/users/ada/");
      expect(org.key.prefix()).toBe("tenants/acme/org/");
    });
  });

  it("hydrates a tenant once for many concurrent cold gets, and serves concurrent readers", async () => {
    const seed = await t.open();
    await seed.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      for (let i = 0; i < 20; i++) await db.run("INSERT INTO notes VALUES ($1)", [`n${i}`]);
    });
    await seed.close();
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects });
    const before = objects.count("get");
    const dbs = await Promise.all(Array.from({ length: 25 }, () => store.get(ada)));
    // One manifest read and one download per object it names (a snapshot and one segment).
    expect(objects.count("get") - before).toBe(3);
    const counts = await Promise.all(dbs.flatMap((db) => [count(db), count(db)]));
    expect(new Set(counts)).toEqual(new Set([20]));
    expect(store.stats.replication.restores).toBe(1);
  });
});

describe("TenantStore: publication, eviction, close", () => {
  const t = useTenantStores();

  it("publishes on checkpoint, and a second store hydrates the same rows", async () => {
    const store = await t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('one')");
    const result = await store.checkpoint(ada);
    expect(result).toMatchObject({ uploaded: true, txid: 2 });
    expect((await store.checkpoint(ada)).uploaded).toBe(false); // nothing new
    const other = await t.open();
    expect(await count(await other.get(ada))).toBe(1);
  });

  it("publishes within syncIntervalMs in async durability, without being asked", async () => {
    const store = await t.open({ syncIntervalMs: 20 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('one')");
    await vi.waitFor(async () => expect((await store.inspect(ada)).replica?.txid).toBe(2), { timeout: 5000 });
    expect((await store.inspect(ada)).replica?.lagMs).toBe(0);
  });

  it("persists on eviction and re-hydrates on the next call, through the same view", async () => {
    const store = await t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('kept')");
    await store.evict(ada);
    expect(store.stats.resident).toBe(0);
    expect(existsSync(ada.localPath(store.cacheRoot))).toBe(false); // no disk budget: removed
    expect(await count(db)).toBe(1); // the old view re-hydrates transparently
    expect(store.stats.resident).toBe(1);
  });

  it("publishes every tenant on close; close is idempotent and later calls throw ClosedError", async () => {
    const store = await t.open();
    for (const key of [ada, bob]) {
      await store.withTenant(key, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await db.run("INSERT INTO notes VALUES ('x')");
      });
    }
    await store.close();
    await store.close();
    await expect(store.get(ada)).rejects.toBeInstanceOf(ClosedError);
    const other = await t.open();
    expect((await other.list({ orgId: "acme" })).map((l) => [l.key.toString(), l.layout])).toEqual([
      ["acme/users/ada", "replicated"],
      ["acme/users/bob", "replicated"],
    ]);
    expect(await count(await other.get(bob))).toBe(1);
  });

  it("surfaces an upload error from evict, keeps the tenant resident, and succeeds on retry", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("INSERT INTO notes VALUES ('x')");
    objects.failNext("put");
    const err = await store.evict(ada).catch((e) => e);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.cause).toBeInstanceOf(InjectedFault);
    expect((await store.inspect(ada)).resident).toBe(true);
    await db.run("INSERT INTO notes VALUES ('y')"); // still usable
    await store.evict(ada);
    expect((await store.inspect(ada)).resident).toBe(false);
    expect(await count(await (await t.open()).get(ada))).toBe(2);
  });

  it("reports a manifest write with an unknown outcome as UploadFailedError and reconciles on the next round", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    await db.run("INSERT INTO notes VALUES ('x')");
    // The manifest lands, but its response is lost.
    objects.failNext("put", { when: "after", match: (k) => k.endsWith("manifest.json") });
    const err = await store.checkpoint(ada).catch((e) => e);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.cause).toBeInstanceOf(InjectedFault);
    await db.run("INSERT INTO notes VALUES ('y')");
    expect(await store.checkpoint(ada)).toMatchObject({ uploaded: true, txid: 3 });
    expect(store.stats.replication.conflicts).toBe(0);
    expect(await count(await (await t.open()).get(ada))).toBe(2);
  });

  it("aggregates every failed tenant into one close error and keeps their files for the next store", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const cacheRoot = t.newCacheRoot();
    const store = await t.open({ objectStore: objects, cacheRoot });
    const cy = TenantKey.user("acme", "cy");
    for (const key of [ada, bob, cy]) {
      await store.withTenant(key, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await db.run("INSERT INTO notes VALUES ('x')");
      });
    }
    objects.failNext("put", { times: Number.POSITIVE_INFINITY, match: (k) => !k.startsWith(bob.prefix()) });
    const err = await store.close().catch((e) => e);
    expect(err).toBeInstanceOf(TenantCloseError);
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.message).toContain("flushed 1/3");
    expect(err.failures.map((f: { key: TenantKey }) => f.key.toString()).sort()).toEqual([
      "acme/users/ada",
      "acme/users/cy",
    ]);
    // The next store on the same cache finds the unpublished copies and publishes them by itself.
    const next = await t.open({ cacheRoot, objectStore: t.objects() });
    await vi.waitFor(
      async () => {
        for (const key of [ada, cy]) expect(await t.objects().head(`${key.prefix()}manifest.json`)).not.toBeNull();
      },
      { timeout: 5000 },
    );
    const elsewhere = await t.open();
    expect(await count(await elsewhere.get(cy))).toBe(1);
    expect(await count(await elsewhere.get(ada))).toBe(1);
    expect(await count(await next.get(ada))).toBe(1);
  });

  it("reports eviction errors to the LRU and onError, and recovers on a later pass", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects, lruSize: 1 });
    await store.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      await db.run("INSERT INTO notes VALUES ('x')");
    });
    objects.failNext("put");
    await store.get(bob); // over capacity: ada's publication fails, bob is still served
    expect(t.failures.map((f) => f.key)).toEqual(["acme/users/ada"]);
    expect(t.failures[0]?.error).toBeInstanceOf(UploadFailedError);
    expect(store.stats.resident).toBe(2);
    await store.get(TenantKey.user("acme", "cy")); // next eviction pass retries
    expect((await store.inspect(ada)).resident).toBe(false);
    expect(await count(await (await t.open()).get(ada))).toBe(1);
  });

  it("locks its cache directory against a second store until close, and lists cached files", async () => {
    const cacheRoot = t.newCacheRoot();
    const store = await t.open({ cacheRoot });
    await expect(t.open({ cacheRoot })).rejects.toBeInstanceOf(BusyError);
    await store.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await store.withTenant(TenantKey.org("acme"), (db) => db.run("CREATE TABLE notes (body TEXT)"));
    const cached = await store.listCached();
    expect(cached.map((c) => [c.key.toString(), c.position?.generation])).toEqual([
      ["acme/org", null],
      ["acme/users/ada", null],
    ]);
    await store.close();
    const again = await t.open({ cacheRoot });
    expect(await again.listCached()).toEqual([]);
    expect(again.writerId).toBe(store.writerId); // the same cache is the same writer
  });

  it("lag() is the oldest unpublished write's age and the WAL bytes not yet published, zero once published", async () => {
    const store = await t.open({ durability: "async", syncIntervalMs: 0 });
    expect(store.lag()).toEqual({ ms: 0, bytes: 0 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    expect(store.lag()).toEqual({ ms: 0, bytes: 0 });
    await db.run("INSERT INTO notes VALUES ('x')");
    t.clock.advance(700);
    await db.run("INSERT INTO notes VALUES ('y')");
    t.clock.advance(300);
    const lag = store.lag();
    expect(lag.ms).toBe(1_000);
    expect(lag.bytes).toBeGreaterThan(0);
    await store.checkpoint(ada);
    expect(store.lag()).toEqual({ ms: 0, bytes: 0 });
  });

  it("takes over a lock left by a dead process, refuses one a live process holds, and creates the cache private", async () => {
    const parent = t.newCacheRoot();
    const cacheRoot = join(parent, "fresh", "cache");
    const store = await t.open({ cacheRoot });
    expect(store.durability).toBe("async");
    expect(statSync(cacheRoot).mode & 0o777).toBe(0o700);
    await store.close();
    // A live process (not this one) holds the lock.
    const sleeper = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      writeFileSync(join(cacheRoot, ".lock"), String(sleeper.pid));
      const busy = await t.open({ cacheRoot }).catch((err: unknown) => err);
      expect(busy).toBeInstanceOf(BusyError);
      expect((busy as Error).message).toContain(String(sleeper.pid));
    } finally {
      const exited = new Promise((resolve) => sleeper.once("exit", resolve));
      sleeper.kill("SIGKILL");
      await exited;
    }
    // The same pid, now dead: the lock is stale and taken over.
    const taken = await t.open({ cacheRoot });
    expect(readFileSync(join(cacheRoot, ".lock"), "utf8")).toBe(String(process.pid));
    await taken.close();
  });

  it("starts when the object store cannot be reached, and checks its conditional writes before the first publication", async () => {
    const objects = new FaultyObjectStore(t.objects());
    objects.failNext("put", {
      error: () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    });
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    let store: Awaited<ReturnType<typeof t.open>>;
    try {
      store = await t.open({ objectStore: objects });
      expect(warn.mock.calls.map((c) => String(c[0])).join("\n")).toMatch(/could not check .*ECONNREFUSED/);
    } finally {
      warn.mockRestore();
    }
    const probes = () => objects.calls.filter((c) => c.key.startsWith("tenants/.probe/") && c.method === "put").length;
    const before = probes();
    await (await store.get(ada)).run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    expect(probes()).toBe(before + 3); // the three conditional puts of the check, then the publication
    expect((await store.inspect(ada)).replica?.txid).toBe(1);
  });

  it("rejects bad options with InvalidArgumentError", async () => {
    await expect(t.open({ lruSize: 0 })).rejects.toThrow(/lruSize/);
    await expect(t.open({ idleTtlMs: -1 })).rejects.toThrow(/idleTtlMs/);
    await expect(t.open({ syncIntervalMs: Number.NaN })).rejects.toThrow(/syncIntervalMs/);
    await expect(t.open({ retentionMs: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.open({ durability: "eventually" as never })).rejects.toThrow(/durability/);
    await expect(t.open({ objectStore: undefined as never })).rejects.toThrow(/objectStore/);
  });
});
