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

type SyncOp =
  | { kind: "writes"; writers: number; tenant: number }
  | { kind: "fail"; target: "segments/" | "manifest.json" | "snapshots/"; when: "before" | "after"; times: number }
  | { kind: "slow"; ms: number }
  | { kind: "evict"; tenant: number };

const syncOp: fc.Arbitrary<SyncOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("writes" as const),
      writers: fc.integer({ min: 1, max: 4 }),
      tenant: fc.nat(1),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("fail" as const),
      target: fc.constantFrom("segments/" as const, "manifest.json" as const, "snapshots/" as const),
      when: fc.constantFrom("before" as const, "after" as const),
      times: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("slow" as const), ms: fc.integer({ min: 1, max: 15 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("evict" as const), tenant: fc.nat(1) }) },
);

async function publishedRows(
  store: { get(key: TenantKey): Promise<{ all<T>(sql: string): Promise<T[]> }> },
  key: TenantKey,
): Promise<number[]> {
  const db = await store.get(key);
  if ((await db.all("SELECT name FROM sqlite_master WHERE name = 'rows'")).length === 0) return [];
  return (await db.all<{ id: number }>("SELECT id FROM rows ORDER BY id")).map((r) => r.id);
}

describe("sync durability under object-store errors, lost responses and slow uploads (property)", () => {
  const t = useTenantStores();

  it("object storage holds every acknowledged write at every moment, each transaction whole; once the faults stop, retries converge on the local copy", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(syncOp, { minLength: 1, maxLength: 20 }), async (ops) => {
        const inner = new MemoryObjectStore();
        const objects = new FaultyObjectStore(inner);
        let slowMs = 0;
        objects.beforeCall = async (method) => {
          if (method === "put" && slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
        };
        const store = await t.open({ objectStore: objects, durability: "sync", snapshotFraction: 0.3 });
        const tenants = keys.slice(0, 2);
        for (const key of tenants)
          await store.withTenant(key, (db) => db.run("CREATE TABLE rows (id INTEGER PRIMARY KEY)"));
        const acknowledged: number[][] = tenants.map(() => []);
        /** Every attempted transaction's ids, per tenant (all of a transaction's rows or none may be stored). */
        const attempted: number[][][] = tenants.map(() => []);
        let id = 0;
        for (const o of ops) {
          if (o.kind === "fail")
            objects.failNext("put", { when: o.when, times: o.times, match: (k) => k.includes(o.target) });
          else if (o.kind === "slow") slowMs = o.ms;
          else if (o.kind === "evict")
            await store.evict(tenants[o.tenant] as TenantKey).catch((err) => {
              if (!isStoreError(err, "UPLOAD_FAILED")) throw err;
            });
          else {
            // Concurrent transactions on one tenant: they share segments (group commit) and failures.
            await Promise.all(
              Array.from({ length: o.writers }, async () => {
                const ids = [id++, id++];
                attempted[o.tenant]?.push(ids);
                try {
                  await store.withTenant(tenants[o.tenant] as TenantKey, (db) =>
                    db.transaction(async (tx) => {
                      for (const n of ids) await tx.run("INSERT INTO rows VALUES ($1)", [n]);
                    }),
                  );
                  acknowledged[o.tenant]?.push(...ids);
                } catch (err) {
                  if (!isStoreError(err, "UPLOAD_FAILED")) throw err;
                }
              }),
            );
          }
        }
        // A new machine now, while the faults are still armed: every acknowledged write is there.
        slowMs = 0;
        const reader = await t.open({ objectStore: inner });
        for (const [i, key] of tenants.entries()) {
          const rows = new Set(await publishedRows(reader, key));
          expect((acknowledged[i] ?? []).filter((n) => !rows.has(n))).toEqual([]);
          for (const tx of attempted[i] ?? []) expect(tx.filter((n) => rows.has(n)).length % tx.length).toBe(0);
        }
        await reader.close();
        // The faults stop: background retries publish what was committed but refused.
        objects.clearFaults();
        t.clock.advance(60_000);
        await store.publishPending();
        const converged = await t.open({ objectStore: inner });
        for (const key of tenants) expect(await publishedRows(converged, key)).toEqual(await publishedRows(store, key));
        await converged.close();
        expect(store.stats.replication.conflicts).toBe(0);
        await store.close();
      }),
      { numRuns: 15 },
    );
  }, 120_000);
});
