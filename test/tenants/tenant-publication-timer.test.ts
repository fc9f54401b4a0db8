import { describe, expect, it, vi } from "vitest";
import { ManualScheduler } from "../../src/clock.js";
import { TenantKey } from "../../src/tenants/index.js";
import { useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");

describe("the async publication timer", () => {
  const t = useTenantStores();

  it("publishes a write at the next pass (100 ms), and a busy tenant at most once per 0.6 x syncIntervalMs", async () => {
    const clock = new ManualScheduler(1_700_000_000_000);
    const store = await t.open({ clock, durability: "async", syncIntervalMs: 1_000 });
    const txid = async (key: TenantKey) => (await store.inspect(key)).replica?.txid ?? 0;
    const publishedTo = (key: TenantKey, expected: number) =>
      vi.waitFor(async () => expect(await txid(key)).toBe(expected), { timeout: 5_000 });

    await store.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    expect(await txid(ada)).toBe(0);
    clock.advance(100); // the first pass
    await publishedTo(ada, 1);

    // ada was published at t=100: the pass at t=200 leaves her new write for later, while bob,
    // never published, goes at once. Once bob is published that pass has chosen its tenants.
    await store.withTenant(ada, (db) => db.run("INSERT INTO notes VALUES ('second')"));
    await store.withTenant(bob, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    clock.advance(100);
    await publishedTo(bob, 1);
    expect(await txid(ada)).toBe(1);

    // Passes at t=300..600 still leave ada alone (a new tenant marks each pass as done).
    for (let pass = 0; pass < 4; pass++) {
      const marker = TenantKey.user("acme", `marker${pass}`);
      await store.withTenant(marker, (db) => db.run("CREATE TABLE t (x)"));
      clock.advance(100);
      await publishedTo(marker, 1);
      expect(await txid(ada)).toBe(1);
    }
    // t=700: 600 ms after her last publication started, ada is published again.
    clock.advance(100);
    await publishedTo(ada, 2);
  });

  it("publishPending() publishes every tenant with unpublished writes, however recently it was published", async () => {
    const clock = new ManualScheduler(1_700_000_000_000);
    const store = await t.open({ clock, durability: "async", syncIntervalMs: 1_000 });
    await store.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    clock.advance(100);
    await vi.waitFor(async () => expect((await store.inspect(ada)).replica?.txid).toBe(1), { timeout: 5_000 });
    await store.withTenant(ada, (db) => db.run("INSERT INTO notes VALUES ('second')"));
    expect(await store.publishPending()).toEqual({ done: 1, failed: 0 });
    expect((await store.inspect(ada)).replica?.txid).toBe(2);
  });
});
