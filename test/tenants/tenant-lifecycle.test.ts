import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { ConflictError } from "../../src/errors.js";
import type { ObjectBody, ObjectStore } from "../../src/objects/object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { objectBytes, objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");
const user = (i: number): TenantKey => TenantKey.user("acme", `u${i}`);

/** An object store whose `get` waits until `parties` gets are in flight at once (or fails after 5 s). */
class BarrierObjectStore extends FaultyObjectStore {
  #waiting: (() => void)[] = [];
  constructor(
    inner: ObjectStore,
    readonly parties: number,
  ) {
    super(inner);
  }
  override async get(key: string): Promise<ObjectBody | null> {
    await new Promise<void>((resolve, reject) => {
      this.#waiting.push(resolve);
      if (this.#waiting.length >= this.parties) for (const wake of this.#waiting.splice(0)) wake();
      setTimeout(() => reject(new Error("cold loads did not run in parallel")), 5000).unref();
    });
    return super.get(key);
  }
}

describe("TenantStore: leases, LRU, reaper", () => {
  const t = useTenantStores();

  it("runs cold loads of different tenants in parallel (no store-wide lock across I/O)", async () => {
    const store = await t.open({ objectStore: new BarrierObjectStore(t.objects(), 10) });
    const dbs = await Promise.all(Array.from({ length: 10 }, (_, i) => store.get(user(i))));
    expect(dbs).toHaveLength(10);
    expect(store.stats.resident).toBe(10);
  });

  it("never evicts a leased tenant: LRU pressure skips it, evict() waits for the callback", async () => {
    const store = await t.open({ lruSize: 1 });
    const order: string[] = [];
    await store
      .withTenant(ada, async (db) => {
        await db.run("CREATE TABLE notes (body TEXT)");
        await store.get(bob); // over capacity, but ada is leased
        expect((await store.inspect(ada)).resident).toBe(true);
        const evicting = store.evict(ada).then(() => order.push("evicted"));
        await new Promise((r) => setTimeout(r, 20));
        // Nested calls on the leased tenant do not wait for the pending eviction.
        await db.run("INSERT INTO notes VALUES ('still mine')");
        await (await store.get(ada)).run("INSERT INTO notes VALUES ('nested get')");
        order.push("callback done");
        return { evicting };
      })
      .then(({ evicting }) => evicting);
    expect(order).toEqual(["callback done", "evicted"]);
    expect((await store.inspect(ada)).resident).toBe(false);
    const again = await store.get(ada);
    expect((await again.all("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body)).toEqual([
      "still mine",
      "nested get",
    ]);
  });

  it("never evicts a tenant inside a transaction; a get() view keeps working across evictions", async () => {
    const store = await t.open({ lruSize: 1, idleTtlMs: 1000 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.transaction(async (tx) => {
      await tx.run("INSERT INTO notes VALUES ('in tx')");
      await store.get(bob);
      t.clock.advance(5000);
      expect((await store.reap()).done).toBe(1); // bob only
      expect((await store.inspect(ada)).resident).toBe(true);
      await tx.run("INSERT INTO notes VALUES ('still in tx')");
    });
    await store.get(bob); // now ada is evictable
    expect((await store.inspect(ada)).resident).toBe(false);
    expect(((await db.get<{ n: number }>("SELECT count(*) AS n FROM notes")) as { n: number }).n).toBe(2);
  });

  it("evicts the least recently used tenant", async () => {
    const store = await t.open({ lruSize: 3 });
    for (const i of [0, 1, 2]) await store.get(user(i));
    await (await store.get(user(0))).get("SELECT 1"); // u0 is now the most recent
    await store.get(user(3));
    const resident = await Promise.all([0, 1, 2, 3].map(async (i) => (await store.inspect(user(i))).resident));
    expect(resident).toEqual([true, false, true, true]);
  });

  it("reaps idle tenants after idleTtlMs (each on its own; a cold get is not held behind the reap)", async () => {
    const slow = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: slow, idleTtlMs: 1000, lruSize: 500 });
    for (let i = 0; i < 30; i++) {
      await store.withTenant(user(i), (db) => db.run("CREATE TABLE t (x)"));
    }
    const putSlowly = slow.put.bind(slow);
    slow.put = async (...args) => {
      await new Promise((r) => setTimeout(r, 5));
      return putSlowly(...args);
    };
    t.clock.advance(999);
    expect(await store.reap()).toEqual({ done: 0, failed: 0 });
    t.clock.advance(1);
    let reapDone = false;
    const reaping = store.reap().then((r) => {
      reapDone = true;
      return r;
    });
    await store.get(TenantKey.user("acme", "newcomer"));
    expect(reapDone).toBe(false);
    expect(await reaping).toEqual({ done: 30, failed: 0 });
    expect(store.stats.resident).toBe(1);
    expect((await store.list({ orgId: "acme" })).length).toBe(30);
  });

  it("runs the reaper on its own timer, and idleTtlMs 0 disables it", async () => {
    const timed = await t.open({ idleTtlMs: 20, clock: undefined });
    await timed.get(ada);
    await vi.waitFor(() => expect(timed.stats.resident).toBe(0), { timeout: 2000 });
    const off = await t.open({ idleTtlMs: 0 });
    await off.get(ada);
    t.clock.advance(10 * 60_000);
    expect(await off.reap()).toEqual({ done: 0, failed: 0 });
    expect(off.stats.resident).toBe(1);
  });

  it("reports reap failures to onError and keeps the tenant for the next pass", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects, idleTtlMs: 1000 });
    await store.withTenant(ada, (db) => db.run("CREATE TABLE t (x)"));
    objects.failNext("put");
    t.clock.advance(1000);
    expect(await store.reap()).toEqual({ done: 0, failed: 1 });
    expect(t.failures.map((f) => f.key)).toEqual(["acme/users/ada"]);
    expect((await store.inspect(ada)).resident).toBe(true);
    expect(await store.reap()).toEqual({ done: 1, failed: 0 });
  });

  it("removes cache files of evicted tenants, or keeps them within diskBudgetBytes and reuses them", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const store = await t.open({ objectStore: objects, diskBudgetBytes: 3 * 8192 });
    for (let i = 0; i < 5; i++) {
      await store.withTenant(user(i), (db) => db.run("CREATE TABLE t (x)"));
      await store.evict(user(i));
    }
    expect(store.stats.keptBytes).toBeLessThanOrEqual(3 * 8192);
    expect([0, 1, 2, 3, 4].map((i) => existsSync(user(i).localPath(store.cacheRoot)))).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    const gets = objects.count("get");
    const db = await store.get(user(4)); // resumed from the cache: the manifest is read, nothing downloaded
    expect(objects.count("get")).toBe(gets + 1);
    expect(await db.all("SELECT * FROM t")).toEqual([]);
  });

  it("lists tenants from object storage, per org, skipping other objects", async () => {
    const objects = t.objects();
    await objects.put("acme/notes.txt", "not a tenant");
    const store = await t.open();
    for (const key of [ada, bob, TenantKey.org("acme"), TenantKey.user("zeta", "zed")]) {
      await store.withTenant(key, (db) => db.run("CREATE TABLE t (x)"));
      await store.evict(key);
    }
    expect((await store.list({ orgId: "acme" })).map((l) => l.key.toString())).toEqual([
      "acme/org",
      "acme/users/ada",
      "acme/users/bob",
    ]);
    const all = await store.list();
    expect(all.map((l) => l.key.toString())).toEqual([
      "acme/org",
      "acme/users/ada",
      "acme/users/bob",
      "zeta/users/zed",
    ]);
    expect(all.every((l) => l.size > 0 && l.etag !== "" && l.layout === "replicated")).toBe(true);
  });
});

describe("TenantStore: snapshots while writers continue", () => {
  const t = useTenantStores();

  it("every checkpoint taken during concurrent writes restores to one committed state", async () => {
    const store = await t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE a (n INTEGER)");
    await db.run("CREATE TABLE b (n INTEGER)");
    let stop = false;
    let committed = 0;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        // Each transaction keeps sum(a) = sum(b), across awaits.
        await db.transaction(async (tx) => {
          await tx.run("INSERT INTO a VALUES ($1)", [w * 1000 + i]);
          await new Promise((r) => setImmediate(r));
          await tx.run("INSERT INTO b VALUES ($1)", [w * 1000 + i]);
        });
        committed += 1;
        // Leave the event loop to the publications and checks being measured.
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    const restored: number[] = [];
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await store.checkpoint(ada);
      const check = await t.open();
      const view = await check.get(ada);
      const row = (await view.get<{ a: number; b: number; n: number }>(
        "SELECT (SELECT coalesce(sum(n), 0) FROM a) AS a, (SELECT coalesce(sum(n), 0) FROM b) AS b, (SELECT count(*) FROM a) AS n",
      )) as { a: number; b: number; n: number };
      expect(row.a).toBe(row.b);
      restored.push(row.n);
      await check.close();
    }
    stop = true;
    await Promise.all(writers);
    expect(committed).toBeGreaterThan(0);
    expect([...restored].sort((x, y) => x - y)).toEqual(restored); // monotonic
    await store.checkpoint(ada);
    const final = await t.open();
    expect(((await (await final.get(ada)).get<{ n: number }>("SELECT count(*) AS n FROM a")) as { n: number }).n).toBe(
      committed,
    );
  });

  it("a publication during a transaction ships none of it; the commit is shipped by the next round", async () => {
    const store = await t.open();
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    await db.transaction(async (tx) => {
      await tx.run("INSERT INTO notes VALUES ('late')");
      expect((await store.checkpoint(ada)).uploaded).toBe(false); // uncommitted: not in the WAL's commits
    });
    expect((await store.inspect(ada)).replica?.lagMs).toBeGreaterThanOrEqual(0);
    expect((await store.checkpoint(ada)).uploaded).toBe(true);
    const other = await t.open();
    expect(await (await other.get(ada)).all("SELECT body FROM notes")).toEqual([{ body: "late" }]);
  });
});

describe("TenantStore: recovery after a crash", () => {
  const t = useTenantStores();

  it("publishes every crashed tenant with unpublished writes, however many more than lruSize", async () => {
    const crashed = t.newCacheRoot();
    // No publication timer: the writes are still unpublished when the cache is copied.
    const store = await t.open({ cacheRoot: crashed, durability: "async", syncIntervalMs: 0 });
    const keys = Array.from({ length: 5 }, (_, i) => TenantKey.user("acme", `u${i}`));
    for (const [i, key] of keys.entries()) {
      const db = await store.get(key);
      await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY)");
      await db.run("INSERT INTO notes VALUES ($1)", [i]);
    }
    // The cache as a kill -9 leaves it: the files as they are while the store has them open.
    const copy = t.newCacheRoot();
    cpSync(crashed, copy, { recursive: true, filter: (source) => !source.endsWith("-shm") });
    const restarted = await t.open({ cacheRoot: copy, lruSize: 2 });
    await restarted.recovered();
    await restarted.close();
    const check = await t.open();
    for (const [i, key] of keys.entries()) {
      expect(await (await check.get(key)).all("SELECT id FROM notes")).toEqual([{ id: i }]);
    }
    expect(t.failures).toEqual([]);
  });
});

describe("TenantStore: a crashed cache whose tenant moved on elsewhere", () => {
  const t = useTenantStores();

  it("keeps the unpublished writes as a diverged conflict record, raises TenantConflictError once, then serves the winner", async () => {
    const ada = TenantKey.user("acme", "ada");
    const crashed = t.newCacheRoot();
    const first = await t.open({ cacheRoot: crashed, durability: "async", syncIntervalMs: 0 });
    const mine = await first.get(ada);
    await mine.run("CREATE TABLE notes (body TEXT)");
    await mine.run("INSERT INTO notes VALUES ('published')");
    await first.checkpoint(ada);
    await mine.run("INSERT INTO notes VALUES ('never published')");
    // The cache as a kill -9 leaves it, with one write no manifest names.
    const copy = t.newCacheRoot();
    cpSync(crashed, copy, { recursive: true, filter: (source) => !source.endsWith("-shm") });
    const racing = t.newCacheRoot();
    cpSync(crashed, racing, { recursive: true, filter: (source) => !source.endsWith("-shm") });
    // Meanwhile another store took the tenant and published past it.
    const other = await t.open();
    await (await other.get(ada)).run("INSERT INTO notes VALUES ('winner')");
    await other.checkpoint(ada);

    const restarted = await t.open({ cacheRoot: copy });
    await restarted.recovered();
    const outcome = await restarted.get(ada).then(
      () => "served",
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(TenantConflictError);
    expect(outcome).toBeInstanceOf(ConflictError);
    const rows = await (await restarted.get(ada)).all<{ body: string }>("SELECT body FROM notes ORDER BY rowid");
    expect(rows.map((r) => r.body)).toEqual(["published", "winner"]);
    const records = await restarted.conflicts();
    expect(records).toMatchObject([{ tenant: "acme/users/ada", reason: "diverged", unpublishedTransactions: 1 }]);
    const exported = join(t.newCacheRoot(), "lost.db");
    await restarted.exportConflict(records[0]?.id as string, exported);
    const kept = await openSqlite(exported);
    expect((await kept.all<{ body: string }>("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body)).toEqual([
      "published",
      "never published",
    ]);
    await kept.close();

    // A get made while the recovery pass is still running raises it once too, whichever loads it.
    const early = await t.open({ cacheRoot: racing });
    const outcomes = [];
    outcomes.push(
      await early.get(ada).then(
        () => "served",
        (err: unknown) => err,
      ),
    );
    await early.recovered();
    outcomes.push(
      await early.get(ada).then(
        () => "served",
        (err: unknown) => err,
      ),
    );
    outcomes.push(
      await early.get(ada).then(
        () => "served",
        (err: unknown) => err,
      ),
    );
    expect(outcomes.filter((o) => o instanceof TenantConflictError)).toHaveLength(1);
    expect(outcomes.at(-1)).toBe("served");
  });
});

describe("TenantStore: closing while snapshots are due", () => {
  const t = useTenantStores();

  it("a publication made by close() starts no snapshot behind the closed file: nothing fails, nothing is left unnamed", async () => {
    // snapshotFraction 0: every publication is followed by a snapshot, unless the tenant is closing;
    // lruSize 1: loading each tenant evicts (publishes and closes) the one before.
    const store = await t.open({ durability: "async", syncIntervalMs: 0, snapshotFraction: 0, lruSize: 1 });
    const keys = Array.from({ length: 8 }, (_, i) => TenantKey.user("acme", `s${i}`));
    for (const key of keys) {
      const db = await store.get(key);
      await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
      for (let i = 0; i < 20; i++) await db.run("INSERT INTO notes (body) VALUES (randomblob(2000))");
    }
    await store.close();
    expect(t.failures).toEqual([]);
    for (const key of keys) {
      const manifest = JSON.parse(
        ((await objectBytes(t.objects(), `${key.prefix()}manifest.json`)) as Buffer).toString(),
      ) as { snapshots: { key: string }[] };
      const named = manifest.snapshots.map((s) => `${key.prefix()}${s.key}`).sort();
      expect((await objectKeys(t.objects(), `${key.prefix()}snapshots/`)).sort()).toEqual(named);
    }
  });
});
