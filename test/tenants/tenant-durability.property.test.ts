import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isStoreError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantKey } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTenantStores } from "./tenant-fixture.js";

const keys = [TenantKey.user("acme", "a"), TenantKey.user("acme", "b"), TenantKey.org("acme")];

type Op =
  | { kind: "write"; tenant: number; rows: number }
  | { kind: "checkpoint"; tenant: number }
  | { kind: "evict"; tenant: number }
  | { kind: "failPuts"; times: number }
  | { kind: "reap"; ms: number }
  | { kind: "loseManifestResponse" };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("write" as const), tenant: fc.nat(2), rows: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("checkpoint" as const), tenant: fc.nat(2) }),
  fc.record({ kind: fc.constant("evict" as const), tenant: fc.nat(2) }),
  fc.record({ kind: fc.constant("failPuts" as const), times: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant("reap" as const), ms: fc.integer({ min: 0, max: 2000 }) }),
  fc.record({ kind: fc.constant("loseManifestResponse" as const) }),
);

describe("durability under upload faults (property)", () => {
  const t = useTenantStores();

  it("every acknowledged write survives any interleaving of writes, publications, evictions, reaps, failed uploads and lost responses", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 2 }),
        async (ops, lruSize) => {
          const inner = new MemoryObjectStore();
          const objects = new FaultyObjectStore(inner);
          const store = await t.open({ objectStore: objects, lruSize, idleTtlMs: 1000, snapshotFraction: 0.3 });
          const acknowledged: number[][] = keys.map(() => []);
          let id = 0;
          for (const o of ops) {
            try {
              if (o.kind === "write") {
                const ids = Array.from({ length: o.rows }, () => id++);
                await store.withTenant(keys[o.tenant] as TenantKey, async (db) => {
                  await db.run("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY)");
                  await db.transaction(async (tx) => {
                    for (const n of ids) await tx.run("INSERT INTO rows VALUES ($1)", [n]);
                  });
                });
                acknowledged[o.tenant]?.push(...ids);
              } else if (o.kind === "checkpoint") await store.checkpoint(keys[o.tenant] as TenantKey);
              else if (o.kind === "evict") await store.evict(keys[o.tenant] as TenantKey);
              else if (o.kind === "failPuts") objects.failNext("put", { times: o.times });
              else if (o.kind === "loseManifestResponse") {
                // The manifest lands but the writer never hears back: the next round must reconcile, not fork.
                objects.failNext("put", { when: "after", match: (k) => k.endsWith("manifest.json") });
              } else if (o.kind === "reap") {
                t.clock.advance(o.ms);
                await store.reap();
              }
            } catch (err) {
              if (!isStoreError(err, "UPLOAD_FAILED")) throw err;
            }
          }
          objects.clearFaults();
          await store.close();
          const check = await t.open({ objectStore: inner });
          for (const [i, key] of keys.entries()) {
            const db = await check.get(key);
            const table = await db.all("SELECT name FROM sqlite_master WHERE name = 'rows'");
            const rows =
              table.length === 0
                ? []
                : (await db.all<{ id: number }>("SELECT id FROM rows ORDER BY id")).map((r) => r.id);
            expect(rows).toEqual(acknowledged[i]);
          }
          await check.close();
          expect(store.stats.replication.conflicts).toBe(0);
        },
      ),
      { numRuns: 15 },
    );
  }, 120_000);
});
