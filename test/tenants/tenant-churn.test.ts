import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";

/** Open descriptors of this process. */
function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

// The test is about descriptors and memory, not disk speed: use tmpfs when the machine has one.
const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
const cacheRoot = mkdtempSync(join(base, "storeroom-churn-"));
afterAll(() => rmSync(cacheRoot, { recursive: true, force: true }));

describe.runIf(existsSync("/proc/self/fd"))("churn", () => {
  it("churns 1,000 tenants through an LRU of 50 with open descriptors bounded", async () => {
    const objects = new MemoryObjectStore();
    const store = await TenantStore.open({ objectStore: objects, cacheRoot, lruSize: 50, idleTtlMs: 0 });
    const before = openFds();
    let maxFds = before;
    let maxResident = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 1000) {
        const i = next++;
        await store.withTenant(TenantKey.user("churn", `t${i}`), async (db) => {
          await db.run("CREATE TABLE IF NOT EXISTS t (i INTEGER)");
          await db.run("INSERT INTO t VALUES ($1)", [i]);
        });
        maxFds = Math.max(maxFds, openFds());
        maxResident = Math.max(maxResident, store.stats.resident);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Each open tenant holds a writer and a reader connection (database, WAL and shm files each);
    // each publication in flight (16 at a time) up to three more (a snapshot reads the database
    // and its WAL and writes a temporary file); and the runtime a few.
    expect(maxResident).toBeLessThanOrEqual(50 + 8);
    expect(maxFds - before).toBeLessThanOrEqual((50 + 8) * 6 + 16 * 3 + 16);
    await store.close();
    expect(openFds()).toBeLessThanOrEqual(before + 4);
    expect((await store.list({ orgId: "churn" })).length).toBe(1000);
    // Evicted tenants' files were removed (no disk budget), so the cache holds nothing but bookkeeping.
    expect(readdirSync(join(cacheRoot, "churn", "users"))).toEqual([]);
  }, 120_000);
});
