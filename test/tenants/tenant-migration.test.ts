import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { restoreTenant, TenantKey, tenantHistory } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

/** A database file as the layout before replication stored it: one object per tenant. */
async function oldLayoutDatabase(path: string, rows: string[]): Promise<Buffer> {
  const db = await openSqlite(path, { readConnection: false });
  await db.run("CREATE TABLE notes (body TEXT)");
  for (const row of rows) await db.run("INSERT INTO notes VALUES ($1)", [row]);
  await db.close(); // folds the WAL into the file, as the old checkpoints uploaded it
  return readFileSync(path);
}

async function notes(db: { all<T>(sql: string): Promise<T[]> }): Promise<string[]> {
  return (await db.all<{ body: string }>("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body);
}

describe("migration from the single-object layout", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-tenants-migration-");

  it("publishes an old-layout tenant as its first generation on first hydrate, then removes the old object", async () => {
    const objects = t.objects();
    await objects.put(ada.objectKey(), await oldLayoutDatabase(join(root, "old.db"), ["one", "two"]));
    const store = await t.open();
    expect((await store.list()).map((l) => [l.key.toString(), l.layout])).toEqual([["acme/users/ada", "legacy"]]);
    const db = await store.get(ada);
    expect(await notes(db)).toEqual(["one", "two"]);
    expect(await objects.head(ada.objectKey())).toBeNull();
    expect((await tenantHistory(objects, ada))?.snapshots.map((s) => s.txid)).toEqual([0]);
    await db.run("INSERT INTO notes VALUES ('three')");
    await store.close();
    const elsewhere = await t.open();
    expect(await notes(await elsewhere.get(ada))).toEqual(["one", "two", "three"]);
    await restoreTenant(objects, ada, 0, join(root, "at-0.db"));
    const restored = await openSqlite(join(root, "at-0.db"), { readonly: true });
    expect(await notes(restored)).toEqual(["one", "two"]);
    await restored.close();
  });

  it("adopts an old cache copy with writes its crashed store never uploaded", async () => {
    const objects = t.objects();
    const cacheRoot = t.newCacheRoot();
    const path = ada.localPath(cacheRoot);
    const bytes = await oldLayoutDatabase(join(root, "uploaded.db"), ["uploaded"]);
    const { etag } = await objects.put(ada.objectKey(), bytes);
    // The old store's cache: the same file plus a write it never uploaded, marked open (it crashed).
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(cacheRoot, "acme", "users"), { recursive: true });
    writeFileSync(path, bytes);
    const local = await openSqlite(path, { readConnection: false, walAutocheckpoint: 0 });
    await local.run("INSERT INTO notes VALUES ('never uploaded')");
    writeFileSync(`${path}.state`, JSON.stringify({ etag, open: true }));
    // The WAL stays as the crash left it: copy it aside before this connection's close folds it.
    const wal = readFileSync(`${path}-wal`);
    await local.close();
    writeFileSync(path, bytes);
    writeFileSync(`${path}-wal`, wal);
    const store = await t.open({ cacheRoot });
    expect(await notes(await store.get(ada))).toEqual(["uploaded", "never uploaded"]);
    await store.close();
    expect(await notes(await (await t.open()).get(ada))).toEqual(["uploaded", "never uploaded"]);
    expect(await objectKeys(objects, "acme/")).toEqual([]);
  });

  it("two stores migrating at once: one publishes, the other hydrates it, no conflict is recorded", async () => {
    const objects = t.objects();
    await objects.put(ada.objectKey(), await oldLayoutDatabase(join(root, "race.db"), ["x"]));
    const [a, b] = [await t.open(), await t.open()];
    const [dbA, dbB] = await Promise.all([a.get(ada), b.get(ada)]);
    expect(await notes(dbA)).toEqual(["x"]);
    expect(await notes(dbB)).toEqual(["x"]);
    expect(a.stats.replication.conflicts + b.stats.replication.conflicts).toBe(0);
    expect((await a.conflicts()).length + (await b.conflicts()).length).toBe(0);
  });
});
