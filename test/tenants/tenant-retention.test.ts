import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { restoreTenant, TenantKey, tenantHistory } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

describe("snapshots, retention and garbage collection", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-tenants-retention-");

  it("keeps what restoring inside retentionMs needs, deletes the rest, and restores by transaction or time", async () => {
    const objects = t.objects();
    const start = t.clock.now();
    // snapshotFraction 0: every publication is followed by a snapshot.
    const store = await t.open({ retentionMs: 10_000, snapshotFraction: 0 });
    const db = await store.get(ada);
    /** Writes a row as transaction `txid`, publishes it and waits for the snapshot taken after it. */
    const write = async (body: string, txid: number): Promise<void> => {
      await db.run("INSERT INTO notes VALUES ($1)", [body]);
      await store.checkpoint(ada);
      await expect
        .poll(async () => (await tenantHistory(objects, ada))?.snapshots.some((s) => s.txid === txid), {
          timeout: 20_000,
        })
        .toBe(true);
    };
    await db.run("CREATE TABLE notes (body TEXT)"); // txid 1
    await write("one", 2); // snapshot at start
    t.clock.advance(6000);
    await write("two", 3); // snapshot at start + 6 s
    t.clock.advance(6000);
    await write("three", 4); // snapshot at start + 12 s: the cutoff is start + 2 s
    await expect
      .poll(async () => (await tenantHistory(objects, ada))?.snapshots.map((s) => s.txid), { timeout: 20_000 })
      .toEqual([2, 3, 4]);
    // The snapshot at 0 and the segments up to transaction 2 are deleted from storage too.
    await expect
      .poll(async () => (await objectKeys(objects, `${ada.prefix()}snapshots/`)).length, { timeout: 20_000 })
      .toBe(3);
    const history = await tenantHistory(objects, ada);
    expect(history?.segments.every((s) => s.last > 2)).toBe(true);

    const rows = async (at: number | Date, name: string): Promise<unknown[]> => {
      const to = join(root, name);
      await restoreTenant(objects, ada, at, to);
      const { openSqlite } = await import("../../src/sql/index.js");
      const restored = await openSqlite(to, { readonly: true });
      try {
        return (await restored.all<{ body: string }>("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body);
      } finally {
        await restored.close();
      }
    };
    expect(await rows(2, "at-2.db")).toEqual(["one"]);
    expect(await rows(4, "at-4.db")).toEqual(["one", "two", "three"]);
    expect(await rows(new Date(start + 7000), "at-7s.db")).toEqual(["one", "two"]);
    const tooOld = await restoreTenant(objects, ada, 1, join(root, "at-1.db")).catch((e) => e);
    expect(tooOld).toBeInstanceOf(InvalidArgumentError);
    expect(tooOld.message).toMatch(/older than retention/);
    await expect(restoreTenant(objects, ada, 99, join(root, "at-99.db"))).rejects.toThrow(/last is 4/);
    await expect(restoreTenant(objects, ada, new Date(start - 60_000), join(root, "early.db"))).rejects.toThrow(
      /before the oldest retained state/,
    );
  }, 90_000);

  it("takes a snapshot on a timer when segments stay small", async () => {
    const store = await t.open({ snapshotFraction: 1000, snapshotIntervalMs: 60_000 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    const before = store.stats.replication.snapshots;
    await db.run("INSERT INTO notes VALUES ('x')");
    await store.checkpoint(ada);
    expect(store.stats.replication.snapshots).toBe(before);
    t.clock.advance(60_000);
    await db.run("INSERT INTO notes VALUES ('y')");
    await store.checkpoint(ada);
    await expect.poll(() => store.stats.replication.snapshots, { timeout: 20_000 }).toBe(before + 1);
  });

  it("takes the snapshot a publication asked for while an earlier snapshot was still uploading", async () => {
    const objects = new FaultyObjectStore(t.objects());
    let holding: (() => void) | undefined;
    let held = false;
    const release = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const store = await t.open({ snapshotFraction: 0, objectStore: objects });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await store.checkpoint(ada);
    const initial = (await tenantHistory(objects, ada))?.snapshots.map((s) => s.txid) ?? [];
    objects.beforeCall = async (method, key) => {
      if (held || method !== "put" || !key.includes("/snapshots/")) return;
      held = true;
      await release;
    };
    await db.run("INSERT INTO notes VALUES ('one')");
    await store.checkpoint(ada);
    await expect.poll(() => held, { timeout: 20_000 }).toBe(true);
    // Published while the snapshot of the previous transaction is held mid-upload.
    await db.run("INSERT INTO notes VALUES ('two')");
    await store.checkpoint(ada);
    const last = (await tenantHistory(objects, ada))?.txid;
    holding?.();
    await expect
      .poll(async () => (await tenantHistory(objects, ada))?.snapshots.map((s) => s.txid), { timeout: 20_000 })
      .toContain(last);
    expect(initial).not.toContain(last);
  });
});
