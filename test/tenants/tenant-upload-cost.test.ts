import { describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantKey } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTenantStores } from "./tenant-fixture.js";

const WRITES = 40;

interface Cost {
  databaseBytes: number;
  perWrite: number;
  snapshotsDuringWrites: number;
}

describe("upload cost follows the change, not the database", () => {
  const t = useTenantStores();

  /** Single-row writes on a tenant of about `mb` MB, each published on its own; bytes counted by the object store. */
  async function cost(mb: number): Promise<Cost> {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    // sync: every write waits for its own segment and manifest (one writer, so no group commit): the dearest case.
    const store = await t.open({ objectStore: objects, durability: "sync" });
    const key = TenantKey.user("acme", `size-${mb}`);
    let db = await store.get(key);
    await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    await db.run(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) INSERT INTO notes (body) SELECT hex(randomblob(500)) FROM n",
      [mb * 1000],
    );
    // Published, with the snapshot the bulk load called for; hydrated again from object storage.
    await store.evict(key);
    db = await store.get(key);
    const { size } = (await db.get<{ size: number }>(
      "SELECT page_count * page_size AS size FROM pragma_page_count, pragma_page_size",
    )) as { size: number };
    const before = objects.uploadedBytes;
    const callsBefore = objects.calls.length;
    for (let i = 0; i < WRITES; i++) await db.run("INSERT INTO notes (body) VALUES (hex(randomblob(100)))");
    const perWrite = (objects.uploadedBytes - before) / WRITES;
    const snapshotsDuringWrites = objects.calls
      .slice(callsBefore)
      .filter((c) => (c.method === "put" || c.method === "initMultipart") && c.key.includes("/snapshots/")).length;
    // Every write is there for a new machine.
    const elsewhere = await t.open({ objectStore: objects });
    expect(await (await elsewhere.get(key)).get("SELECT count(*) AS n FROM notes")).toEqual({ n: mb * 1000 + WRITES });
    return { databaseBytes: size, perWrite, snapshotsDuringWrites };
  }

  it("a single-row write uploads a few KiB (its segment and the manifest), the same on a 1 MB and an 8 MB tenant", async () => {
    const small = await cost(1);
    const large = await cost(8);
    console.log(
      `bytes uploaded per single-row sync write: ${(small.perWrite / 1024).toFixed(2)} KiB on ${(small.databaseBytes / 2 ** 20).toFixed(1)} MB, ` +
        `${(large.perWrite / 1024).toFixed(2)} KiB on ${(large.databaseBytes / 2 ** 20).toFixed(1)} MB`,
    );
    expect(large.databaseBytes).toBeGreaterThan(6 * small.databaseBytes);
    for (const c of [small, large]) {
      expect(c.snapshotsDuringWrites).toBe(0);
      expect(c.perWrite).toBeLessThan(16 * 1024);
    }
    // Whole-database uploads would make this about 8; the manifest grows a little with the log, no more.
    expect(large.perWrite / small.perWrite).toBeLessThan(1.5);
  }, 60_000);
});
