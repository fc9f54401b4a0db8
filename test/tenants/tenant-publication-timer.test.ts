import { describe, expect, it, vi } from "vitest";
import { ManualScheduler } from "../../src/clock.js";
import { TenantKey } from "../../src/tenants/index.js";
import { useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");

describe("the async publication timer", () => {
  const t = useTenantStores();

  it("publishes a tenant at most once per 0.6 x syncIntervalMs from its load or its last publication, at a pass every 100 ms", async () => {
    const clock = new ManualScheduler(1_700_000_000_000);
    const store = await t.open({ clock, durability: "async", syncIntervalMs: 1_000 });
    const txid = async (key: TenantKey) => (await store.inspect(key)).replica?.txid ?? 0;
    const publishedTo = (key: TenantKey, expected: number) =>
      vi.waitFor(async () => expect(await txid(key)).toBe(expected), { timeout: 5_000 });
    // Markers are loaded now but written only later, one per pass: each is then due and spaced
    // from its load, so the pass after its write publishes it, and its publication ending shows
    // that the pass has chosen its tenants.
    const markers = Array.from({ length: 5 }, (_, i) => TenantKey.user("acme", `marker${i}`));
    for (const key of markers) await store.withTenant(key, (db) => db.get("SELECT 1 AS one"));
    for (const key of [ada, bob]) await store.withTenant(key, (db) => db.run("CREATE TABLE t (x)"));

    // Until t=600 no pass publishes anything: every tenant was loaded less than 600 ms before.
    clock.advance(500);
    await store.withTenant(bob, (db) => db.run("INSERT INTO t VALUES (1)"));
    expect([await txid(ada), await txid(bob)]).toEqual([0, 0]);
    clock.advance(100); // t=600
    await publishedTo(ada, 1);
    await publishedTo(bob, 2);

    // ada writes again at t=600: the passes of t=700..1100 leave her alone.
    await store.withTenant(ada, (db) => db.run("INSERT INTO t VALUES (2)"));
    for (const marker of markers) {
      await store.withTenant(marker, (db) => db.run("CREATE TABLE t (x)"));
      clock.advance(100);
      await publishedTo(marker, 1);
      expect(await txid(ada)).toBe(1);
    }
    // t=1200: 600 ms after her last publication started, ada is published again.
    clock.advance(100);
    await publishedTo(ada, 2);
  });

  it("publishPending() publishes every tenant with unpublished writes, however recently it was published", async () => {
    const clock = new ManualScheduler(1_700_000_000_000);
    const store = await t.open({ clock, durability: "async", syncIntervalMs: 1_000 });
    await store.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    expect(await store.publishPending()).toEqual({ done: 1, failed: 0 });
    expect((await store.inspect(ada)).replica?.txid).toBe(1);
    await store.withTenant(ada, (db) => db.run("INSERT INTO notes VALUES ('second')"));
    expect(await store.publishPending()).toEqual({ done: 1, failed: 0 });
    expect((await store.inspect(ada)).replica?.txid).toBe(2);
  });
});
