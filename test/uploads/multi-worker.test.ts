import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { type Database, openPostgres } from "../../src/sql/index.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { DeleteWorker } from "../../src/uploads/delete-worker.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";
import { LeaseLedger, TrackingDeleteQueue } from "./tracking-delete-queue.js";

describe.runIf(hasPostgres)("postgres: 4 DeleteWorkers draining 2,000 pending deletes at once", () => {
  const pg = { name: "", url: "" };
  const handles: Database[] = [];
  beforeAll(async () => {
    Object.assign(pg, await createDatabase("uploads"));
    const db = await openPostgres(pg.url, { max: 2 });
    handles.push(db);
    await db.migrate(uploadsMigrations);
  });
  afterAll(async () => {
    for (const h of handles) await h.close();
    if (pg.name !== "") await dropDatabase(pg.name);
  });

  it("deletes each object exactly once and never leases a row to two workers at the same time", {
    timeout: 60_000,
  }, async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const keys = Array.from({ length: 2_000 }, (_, i) => `priv/2026/01/01/obj-${String(i).padStart(4, "0")}.bin`);
    for (const key of keys) await objects.put(key, key);
    await new DeleteQueue({ database: handles[0] as Database }).schedule(keys, "deleted");
    // Deletes yield to the event loop so the workers' batches genuinely interleave.
    objects.beforeCall = () => new Promise((r) => setImmediate(r));

    const ledger = new LeaseLedger();
    const workers = await Promise.all(
      ["w1", "w2", "w3", "w4"].map(async (name) => {
        // Small pools: each worker still runs 8 deletes at once, and the suite shares the server with others.
        const db = await openPostgres(pg.url, { max: 3 });
        handles.push(db);
        const queue = new TrackingDeleteQueue({ database: db }, ledger, name);
        return new DeleteWorker({ database: db, objects, queue, batchSize: 100, concurrency: 8 });
      }),
    );
    const rounds = await Promise.all(
      workers.map(async (worker) => {
        let leased = 0;
        for (;;) {
          const { results } = await worker.runOnce();
          if (results.length === 0) return leased;
          expect(results.every((r) => r.status === "deleted")).toBe(true);
          leased += results.length;
        }
      }),
    );

    expect(ledger.overlaps).toEqual([]);
    expect(ledger.leasedTotal).toBe(2_000);
    expect(rounds.reduce((a, b) => a + b, 0)).toBe(2_000);
    expect(rounds.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(objects.succeeded("delete")).toBe(2_000);
    expect(keys.every((key) => objects.succeeded("delete", key) === 1)).toBe(true);
    expect(await new DeleteQueue({ database: handles[0] as Database }).count()).toBe(0);
    expect((await objects.list("priv/")).objects).toEqual([]);
  });
});
