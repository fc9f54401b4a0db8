import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { appendEvent, OutboxDispatcher, type OutboxRecord, type OutboxSink } from "../../src/uploads/index.js";
import { forEachEngine } from "./engines.js";

const deleted = (fileKey: string, owner = "acme/org") =>
  ({ topic: "file.deleted", payload: { fileKey, reason: "deleted", owner } }) as const;

/** A sink that records deliveries and fails while `failing(event)` says so. */
function recordingSink(failing: (event: OutboxRecord) => boolean = () => false): OutboxSink & { seen: string[] } {
  const seen: string[] = [];
  return {
    name: "recording",
    seen,
    async deliver(event) {
      if (failing(event)) throw new Error(`refused ${event.id}`);
      seen.push(`${(event.payload as { fileKey: string }).fileKey}#${event.id}`);
    },
  };
}

forEachEngine("OutboxDispatcher", (ctx) => {
  it("delivers in order per key; a failing event holds back only its own key, backs off, then dies", async () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000);
    for (const key of ["a", "b", "a", "c", "b"]) await appendEvent(db, clock.now(), deleted(key));
    const [firstA] = (await db.all<{ id: number }>("SELECT id FROM storeroom_upload_outbox ORDER BY id")).map((r) =>
      Number(r.id),
    );
    let refuse = true;
    const sink = recordingSink((e) => refuse && e.id === firstA);
    const failures: boolean[] = [];
    const dispatcher = new OutboxDispatcher({
      database: db,
      clock,
      sinks: [sink],
      maxAttempts: 3,
      baseBackoffMs: 1_000,
      intervalMs: 0,
      onFailure: (_e, _err, dead) => failures.push(dead),
    });
    // "a" fails; the first "b" and "c" go out; the second "b" waited for the first one.
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 2, retried: 1, deadLettered: 0 });
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 1, retried: 0 });
    expect(sink.seen.map((s) => s.split("#")[0])).toEqual(["b", "c", "b"]);
    // The backoff holds the failed event and the later "a" back until it is due.
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 0, retried: 0 });
    clock.advance(1_000);
    expect(await dispatcher.runOnce()).toMatchObject({ retried: 1 });
    clock.advance(2_000);
    expect(await dispatcher.runOnce()).toMatchObject({ deadLettered: 1 });
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 1 });
    expect(failures).toEqual([false, false, true]);
    expect(sink.seen.filter((s) => s.startsWith("a"))).toHaveLength(1);
    const dead = await dispatcher.deadLetters();
    expect(dead.map((d) => [d.id, d.attempts])).toEqual([[firstA, 3]]);
    expect(dead[0]?.lastError).toBe(`refused ${firstA}`);
    refuse = false;
    expect(await dispatcher.lag()).toEqual({ pending: 0, oldestAgeMs: 0 });
  });

  it("redelivers an event whose delivery was interrupted (at least once) and purges delivered rows after the retention", async () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000);
    await appendEvent(db, clock.now(), deleted("x"));
    let crash = true;
    const sink: OutboxSink = {
      name: "crashy",
      async deliver() {
        if (crash) throw new Error("connection reset");
      },
    };
    const dispatcher = new OutboxDispatcher({
      database: db,
      clock,
      sinks: [sink],
      intervalMs: 0,
      baseBackoffMs: 10,
      retentionMs: 60_000,
    });
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 0, retried: 1 });
    expect((await dispatcher.lag()).pending).toBe(1);
    clock.advance(10);
    crash = false;
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 1 });
    clock.advance(59_000);
    expect((await dispatcher.runOnce()).purged).toBe(0);
    clock.advance(2_000);
    expect((await dispatcher.runOnce()).purged).toBe(1);
    expect(await db.get("SELECT id FROM storeroom_upload_outbox")).toBeUndefined();
  });

  it("several dispatchers on one database deliver every event once per run and keep each key in order", async () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000);
    const keys = Array.from({ length: 60 }, (_, i) => `k${i % 6}`);
    for (const key of keys) await appendEvent(db, clock.now(), deleted(key));
    const sink = recordingSink();
    const dispatchers = Array.from(
      { length: 3 },
      () => new OutboxDispatcher({ database: db, clock, sinks: [sink], intervalMs: 0, batchSize: 7 }),
    );
    for (let round = 0; round < 30 && sink.seen.length < keys.length; round++) {
      await Promise.all(dispatchers.map((d) => d.runOnce()));
    }
    expect(sink.seen).toHaveLength(keys.length);
    expect(new Set(sink.seen).size).toBe(keys.length);
    for (let k = 0; k < 6; k++) {
      const ids = sink.seen.filter((s) => s.startsWith(`k${k}#`)).map((s) => Number(s.split("#")[1]));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
  });
});
