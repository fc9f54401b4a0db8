import { buffer } from "node:stream/consumers";
import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { DeleteWorker } from "../../src/uploads/delete-worker.js";
import { type ReferenceSource, reconcile } from "../../src/uploads/reconcile.js";
import { forEachEngine } from "./engines.js";
import { newClaim } from "./fixtures.js";

const HOUR = 3_600_000;

forEachEngine("reconcile", (ctx) => {
  const setup = async () => {
    const { db } = ctx();
    const clock = new ManualClock(Date.parse("2026-05-14T00:00:00Z"));
    const objects = new MemoryObjectStore({ clock });
    for (const key of [
      "priv/claimed.bin",
      "pub/referenced.png",
      "priv/queued.bin",
      "priv/orphan.bin",
      "pub/orphan2.png",
    ]) {
      await objects.put(key, `bytes of ${key}`, { contentType: "image/png" });
    }
    await new ClaimStore({ database: db }).create(newClaim({ key: "priv/claimed.bin" }));
    await new DeleteQueue({ database: db }).schedule(["priv/queued.bin"], "deleted");
    clock.advance(2 * HOUR);
    await objects.put("priv/young.bin", "in flight");
    const referencedSet = new Set(["pub/referenced.png", "pub/gone.png"]);
    const references: ReferenceSource = {
      referencedKeys: async (keys) => new Set(keys.filter((k) => referencedSet.has(k))),
      async *allReferences() {
        yield* referencedSet;
      },
    };
    return { db, clock, objects, references };
  };

  it("reports orphans and dangling references in a dry run and changes nothing", async () => {
    const { db, clock, objects, references } = await setup();
    const report = await reconcile({ database: db, objects, references, clock });
    expect(report).toEqual({
      dryRun: true,
      scanned: 6,
      orphans: ["pub/orphan2.png", "priv/orphan.bin"],
      quarantined: [],
      purged: [],
      danglingReferences: ["pub/gone.png"],
    });
    expect(await objects.head("priv/orphan.bin")).not.toBeNull();
    expect((await objects.list("quarantine/")).objects).toEqual([]);
  });

  it("reports a reference that is no valid object key as dangling, instead of failing after the quarantine", async () => {
    const { db, clock, objects } = await setup();
    const bad = ["", "/abs", "pub/../priv/claimed.bin", "https://cdn.example/pub/referenced.png"];
    const references: ReferenceSource = {
      referencedKeys: async (keys) => new Set(keys.filter((k) => k === "pub/referenced.png")),
      async *allReferences() {
        yield* ["pub/referenced.png", ...bad];
      },
    };
    const report = await reconcile({ database: db, objects, references, clock, dryRun: false, limit: 10 });
    expect(report.quarantined).toContain("priv/orphan.bin");
    expect(report.danglingReferences).toEqual(bad);
  });

  it("quarantines orphans (copy, then remove) and purges them after the retention", async () => {
    const { db, clock, objects, references } = await setup();
    const report = await reconcile({ database: db, objects, references, clock, dryRun: false, limit: 1 });
    expect(report.quarantined).toEqual(["pub/orphan2.png"]);
    expect(await objects.head("pub/orphan2.png")).toBeNull();
    const copy = await objects.get("quarantine/pub/orphan2.png");
    expect((await buffer(copy!.body)).toString()).toBe("bytes of pub/orphan2.png");
    expect(copy?.contentType).toBe("image/png");
    expect(await objects.head("priv/orphan.bin")).not.toBeNull();
    for (const key of ["priv/claimed.bin", "pub/referenced.png", "priv/queued.bin", "priv/young.bin"]) {
      expect(await objects.head(key), key).not.toBeNull();
    }
    clock.advance(8 * 24 * HOUR);
    const later = await reconcile({ database: db, objects, references, clock, dryRun: false });
    expect(later.quarantined).toEqual(["priv/orphan.bin", "priv/young.bin"]);
    expect(later.purged).toEqual(["quarantine/pub/orphan2.png"]);
    const queued = (await new DeleteQueue({ database: db, clock }).list()).filter((d) => d.reason === "reconcile");
    expect(queued.map((d) => d.key)).toEqual(["quarantine/pub/orphan2.png"]);
    await new DeleteWorker({ database: db, objects, clock }).runOnce();
    expect(await objects.head("quarantine/pub/orphan2.png")).toBeNull();
    expect(await objects.head("quarantine/priv/orphan.bin")).not.toBeNull();
  });

  it("changes nothing when the reference source fails, and rejects an overlapping quarantine prefix", async () => {
    const { db, clock, objects } = await setup();
    const failing: ReferenceSource = {
      referencedKeys: async () => {
        throw new Error("business db down");
      },
    };
    await expect(reconcile({ database: db, objects, references: failing, clock, dryRun: false })).rejects.toThrow(
      "business db down",
    );
    expect(await objects.head("priv/orphan.bin")).not.toBeNull();
    const references: ReferenceSource = { referencedKeys: async () => new Set() };
    await expect(reconcile({ database: db, objects, references, quarantinePrefix: "priv/q/" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(reconcile({ database: db, objects, references, quarantinePrefix: "q" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it("reports the objects scanned so far after each listed page without changing the report", async () => {
    const { db, clock, objects, references } = await setup();
    const plain = await reconcile({ database: db, objects, references, clock });
    const calls: [number, number | undefined][] = [];
    const report = await reconcile({
      database: db,
      objects,
      references,
      clock,
      onProgress: (d, t) => calls.push([d, t]),
    });
    expect(report).toEqual(plain);
    // pub/ holds two objects, priv/ four: one page each.
    expect(calls).toEqual([
      [2, undefined],
      [6, undefined],
    ]);
  });
});
