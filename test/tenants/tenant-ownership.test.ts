import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { isStoreError } from "../../src/errors.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import {
  TenantConflictError,
  TenantKey,
  TenantLeases,
  type TenantLeasesOptions,
  TenantOwnedElsewhereError,
  type TenantStore,
} from "../../src/tenants/index.js";
import { readWriterId } from "../../src/tenants/writer-id.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";
import { objectBytes, useTenantStores } from "./tenant-fixture.js";

const LEASE_MS = 1_000;
const acme = TenantKey.org("acme");

interface Engine {
  name: string;
  open(): Promise<Database>;
}

const dir = useTempDir("storeroom-leases-");
const pgDb = hasPostgres ? useFreshPostgresDatabase() : undefined;
const engines: Engine[] = [{ name: "sqlite", open: () => openSqlite(join(dir, "control.db")) }];
if (pgDb !== undefined) engines.push({ name: "postgres", open: () => openPostgres(pgDb.url) });

describe.each(engines)("TenantLeases on $name", (engine) => {
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close().catch(() => undefined);
  });
  async function setup() {
    const database = await engine.open();
    opened.push(database);
    await database.run("DELETE FROM storeroom_tenant_leases").catch(() => undefined);
    const clock = new ManualClock(1_700_000_000_000);
    const lost: string[] = [];
    const leases = async (holder: string, options: Partial<TenantLeasesOptions> = {}) => {
      const l = await TenantLeases.open({
        database,
        holder,
        address: `http://${holder}`,
        leaseMs: LEASE_MS,
        clock,
        onLost: (key) => lost.push(`${holder}:${key}`),
        ...options,
      });
      opened.unshift(l);
      return l;
    };
    return { database, clock, lost, leases };
  }

  it("gives a tenant one holder at a time and names the live holder to everyone else", async () => {
    const { leases } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    const first = await a.place(acme);
    expect(first.local).toBe(true);
    const second = await b.place(acme);
    expect(second).toMatchObject({ local: false, holder: "node-a", address: "http://node-a" });
    await expect(b.acquire(acme)).rejects.toBeInstanceOf(TenantOwnedElsewhereError);
    // The holder's own requests and its store share the one lease.
    const again = await a.place(acme);
    const loaded = await a.acquire(acme);
    if (!first.local || !again.local) throw new Error("expected local placements");
    expect(again.lease.epoch).toBe(first.lease.epoch);
    expect(loaded.epoch).toBe(first.lease.epoch);
  });

  it("takes a lease from another holder only after it expired, with a higher epoch, and counts the steal", async () => {
    const { leases, clock, lost } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    const held = await a.acquire(acme);
    clock.advance(LEASE_MS - 1);
    expect((await b.place(acme)).local).toBe(false);
    clock.advance(1);
    const taken = await b.acquire(acme);
    expect(taken).toEqual({ epoch: held.epoch + 1, stolen: true });
    expect(b.counters.steals).toBe(1);
    // The old holder finds out on its next renewal (or the next placement past its guard time).
    expect(await a.renew()).toEqual({ renewed: 0, lost: 1 });
    expect(lost).toEqual(["node-a:acme/org"]);
    const placed = await a.place(acme);
    expect(placed).toMatchObject({ local: false, holder: "node-b" });
  });

  it("renews held leases so they never expire while the tenant is in use", async () => {
    const { leases, clock } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    await a.acquire(acme);
    for (let i = 0; i < 10; i++) {
      clock.advance(LEASE_MS / 2);
      await a.renew();
      expect((await b.place(acme)).local).toBe(false);
    }
    expect(b.counters.steals).toBe(0);
  });

  it("releases a lease once the store closed the tenant and no request holds it; the next take is no steal", async () => {
    const { leases } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    const lease = await a.acquire(acme);
    const pinned = await a.place(acme);
    await a.release(acme, lease);
    expect((await b.place(acme)).local).toBe(false);
    if (!pinned.local) throw new Error("expected local");
    pinned.release();
    await expect.poll(async () => (await a.lookup(acme))?.expiresAt, { timeout: 10_000 }).toBe(0);
    const taken = await b.acquire(acme);
    expect(taken).toEqual({ epoch: lease.epoch + 1, stolen: false });
    expect(b.counters.steals).toBe(0);
    expect(a.heldTenants()).toEqual([]);
  });

  it("confirms a lease with the database once its local validity ran out (a paused holder)", async () => {
    const { leases, clock, lost } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    await a.acquire(acme);
    clock.advance(LEASE_MS);
    await b.acquire(acme);
    // No renewal ran on the paused holder: its next placement asks the database and learns the truth.
    expect(await a.place(acme)).toMatchObject({ local: false, holder: "node-b" });
    expect(lost).toEqual(["node-a:acme/org"]);
  });

  it("raises an epoch the tenant's manifest is already past, and refuses to raise a lost lease", async () => {
    const { leases, clock } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    const lease = await a.acquire(acme);
    expect(await a.advance(acme, lease, 42)).toEqual({ epoch: 42, stolen: false });
    clock.advance(LEASE_MS);
    expect((await b.acquire(acme)).epoch).toBe(43);
    await expect(a.advance(acme, { epoch: 42, stolen: false }, 50)).rejects.toBeInstanceOf(TenantOwnedElsewhereError);
  });

  it("lets one of many concurrent takers win and tells the others who did", async () => {
    const { leases } = await setup();
    const nodes = await Promise.all(["n1", "n2", "n3", "n4", "n5"].map((n) => leases(n)));
    const placements = await Promise.all(nodes.flatMap((n) => [n.place(acme), n.place(acme)]));
    const local = placements.filter((p) => p.local);
    const holders = new Set(placements.map((p, i) => (p.local ? nodes[Math.floor(i / 2)]?.holder : p.holder)));
    expect(holders.size).toBe(1);
    expect(local.length).toBe(2);
  });

  it("answers a remote holder from memory until its lease expires, and reads again once told to forget it", async () => {
    const { leases, clock } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    await a.acquire(acme);
    expect(await b.place(acme)).toMatchObject({ local: false, holder: "node-a" });
    await a.close();
    // Still forwarded to node-a (which, when it is up, serves or forwards on): no database round trip.
    expect(await b.place(acme)).toMatchObject({ local: false, holder: "node-a" });
    b.forget(acme);
    expect((await b.place(acme)).local).toBe(true);
    // An expired remembered holder is never used.
    const c = await leases("node-c");
    expect(await c.place(acme)).toMatchObject({ local: false, holder: "node-b" });
    clock.advance(LEASE_MS);
    expect((await c.place(acme)).local).toBe(true);
  });

  it("releases every lease on close", async () => {
    const { leases } = await setup();
    const a = await leases("node-a");
    const b = await leases("node-b");
    await a.acquire(acme);
    await a.acquire(TenantKey.user("acme", "ada"));
    await a.close();
    expect(await b.liveByHolder()).toEqual(new Map());
    expect((await b.acquire(acme)).stolen).toBe(false);
  });
});

describe("TenantStore with ownership leases", () => {
  const stores = useTenantStores();
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close().catch(() => undefined);
  });

  async function twoNodes(durability: "sync" | "async" = "sync") {
    const database = await openSqlite(join(dir, `leases-${Math.random().toString(16).slice(2)}.db`));
    opened.push(database);
    const leaseClock = new ManualClock(1_700_000_000_000);
    const node = async (): Promise<{ store: TenantStore; leases: TenantLeases }> => {
      const root = stores.newCacheRoot();
      const holder = readWriterId(root);
      const leases = await TenantLeases.open({ database, holder, leaseMs: LEASE_MS, clock: leaseClock });
      opened.unshift(leases);
      const store = await stores.open({ cacheRoot: root, ownership: leases, durability, syncIntervalMs: 0 });
      return { store, leases };
    };
    return { a: await node(), b: await node(), leaseClock };
  }

  async function manifestOf(key: TenantKey) {
    const bytes = await objectBytes(stores.objects(), `${key.prefix()}manifest.json`);
    return bytes === null ? null : (JSON.parse(bytes.toString()) as { epoch: number; writer: string; txid: number });
  }

  it("loads a tenant only under its lease and writes the lease's epoch into the manifest", async () => {
    const { a, b } = await twoNodes();
    await a.store.withTenant(acme, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      await db.run("INSERT INTO notes VALUES ('one')");
    });
    const lease = await a.leases.lookup(acme);
    expect(await manifestOf(acme)).toMatchObject({ epoch: lease?.epoch, writer: a.store.writerId });
    await expect(b.store.get(acme)).rejects.toBeInstanceOf(TenantOwnedElsewhereError);
    expect(b.store.stats.resident).toBe(0);
  });

  it("fences the earlier owner the moment the lease is taken: its late write fails and is never acknowledged", async () => {
    const { a, b, leaseClock } = await twoNodes();
    const dbA = await a.store.get(acme);
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await dbA.run("INSERT INTO notes VALUES ('before')");
    // Node A is paused past its lease; node B takes the tenant over and claims the manifest.
    leaseClock.advance(LEASE_MS);
    const dbB = await b.store.get(acme);
    expect(await dbB.all("SELECT body FROM notes")).toEqual([{ body: "before" }]);
    const takenOver = await manifestOf(acme);
    expect(takenOver).toMatchObject({ writer: b.store.writerId, epoch: (await b.leases.lookup(acme))?.epoch });
    // A wakes up and writes before noticing: its publication fails the condition.
    const late = await dbA.run("INSERT INTO notes VALUES ('late')").then(
      () => "acknowledged",
      (err: unknown) => err,
    );
    expect(late).toBeInstanceOf(TenantConflictError);
    expect(await manifestOf(acme)).toEqual(takenOver);
    await dbB.run("INSERT INTO notes VALUES ('after')");
    expect(await dbB.all("SELECT body FROM notes ORDER BY rowid")).toEqual([{ body: "before" }, { body: "after" }]);
    expect(b.leases.counters.steals).toBe(1);
  });

  it("publishes a never-published tenant when taking it from an expired holder, so that holder cannot create it late", async () => {
    const { a, b, leaseClock } = await twoNodes();
    const dbA = await a.store.get(acme);
    leaseClock.advance(LEASE_MS);
    const dbB = await b.store.get(acme);
    expect(await manifestOf(acme)).toMatchObject({ writer: b.store.writerId });
    const late = await dbA.run("CREATE TABLE late (x)").then(
      () => "acknowledged",
      (err: unknown) => err,
    );
    expect(isStoreError(late, "CONFLICT")).toBe(true);
    await dbB.run("CREATE TABLE notes (body TEXT)");
    await dbB.run("INSERT INTO notes VALUES ('b')");
    expect(await dbB.all("SELECT name FROM sqlite_master WHERE name = 'late'")).toEqual([]);
  });

  it("gives the lease back on eviction and on close, so the next owner takes it without waiting", async () => {
    const { a, b } = await twoNodes();
    await a.store.withTenant(acme, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.store.evict(acme);
    expect((await a.leases.lookup(acme))?.expiresAt).toBe(0);
    const db = await b.store.get(acme);
    await db.run("INSERT INTO notes VALUES ('b')");
    expect(b.leases.counters.steals).toBe(0);
    await b.store.close();
    expect((await b.leases.lookup(acme))?.expiresAt).toBe(0);
  });

  it("raises the lease above an epoch the manifest already names (a tenant written before leases)", async () => {
    // Three processes in turn, no leases: each takeover raised the manifest's epoch.
    for (let i = 0; i < 3; i++) {
      const plain = await stores.open({ durability: "sync" });
      await plain.withTenant(acme, async (db) => {
        await db.run("CREATE TABLE IF NOT EXISTS t (x)");
        await db.run("INSERT INTO t VALUES (1)");
      });
      await plain.close();
    }
    const before = await manifestOf(acme);
    const { a } = await twoNodes();
    await a.store.withTenant(acme, (db) => db.run("INSERT INTO t VALUES (2)"));
    const after = await manifestOf(acme);
    expect(before?.epoch).toBe(3);
    expect(after?.epoch).toBeGreaterThan(3);
    expect((await a.leases.lookup(acme))?.epoch).toBe(after?.epoch);
  });
});
