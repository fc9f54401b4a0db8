import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { appendEvent, Outbox } from "../../src/uploads/outbox.js";
import type { OutboxRecord } from "../../src/uploads/upload-events.js";
import { forEachEngine } from "./engines.js";

forEachEngine("Outbox", (ctx) => {
  const event = (fileKey: string) => ({
    topic: "file.deleted" as const,
    payload: { fileKey, reason: "deleted" as const, owner: "" },
  });

  it("dispatches committed events in order and marks them only after the handler resolved", async () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000);
    const outbox = new Outbox({ database: db, clock });
    await db.transaction(async (tx) => {
      for (const k of ["a", "b", "c"]) await appendEvent(event(k), { executor: tx, now: clock.now() });
    });
    await expect(
      db.transaction(async (tx) => {
        await appendEvent(event("rolled-back"), { executor: tx, now: clock.now() });
        throw new Error("rollback");
      }),
    ).rejects.toThrow();
    const seen: string[] = [];
    const boom = new Error("publisher down");
    const first = await outbox.drain(async (e: OutboxRecord) => {
      if (e.topic !== "file.deleted") throw new Error("unexpected topic");
      if (e.payload.fileKey === "b") throw boom;
      seen.push(e.payload.fileKey);
    });
    expect(first).toEqual({ dispatched: 1, error: boom });
    expect(await outbox.countPending()).toBe(2);
    expect((await outbox.pending()).map((e) => (e.topic === "file.deleted" ? e.payload.fileKey : ""))).toEqual([
      "b",
      "c",
    ]);
    const second = await outbox.drain(async (e) => {
      if (e.topic === "file.deleted") seen.push(e.payload.fileKey);
    });
    expect(second).toEqual({ dispatched: 2 });
    expect(seen).toEqual(["a", "b", "c"]);
    expect(await outbox.pending()).toEqual([]);
    expect(await outbox.drain(async () => {})).toEqual({ dispatched: 0 });
    expect(await outbox.countPending()).toBe(0);
    clock.advance(10);
    expect(await outbox.purgeDispatched(clock.now())).toBe(3);
  });

  it("appendEvent takes { executor, now }, keeps the deprecated positional form, and refuses a missing executor", async () => {
    const { db } = ctx();
    const outbox = new Outbox({ database: db });
    await appendEvent(event("options"), { executor: db, now: 5 });
    await appendEvent(db, 6, event("positional"));
    const listed = await outbox.listAfter(0);
    expect(listed.map((e) => [e.topic === "file.deleted" ? e.payload.fileKey : "", e.createdAt])).toEqual([
      ["options", 5],
      ["positional", 6],
    ]);
    const refused = await appendEvent(event("none"), {} as never).catch((e) => e);
    expect(refused).toBeInstanceOf(InvalidArgumentError);
    expect(await outbox.listAfter(0)).toHaveLength(2);
  });

  it("gives concurrent dispatchers disjoint events", async () => {
    const { db } = ctx();
    const outbox = new Outbox({ database: db, clock: new ManualClock(1_000) });
    const queue = new DeleteQueue({ database: db });
    await queue.schedule(["x"], "deleted");
    for (let i = 0; i < 40; i++) await appendEvent(event(`k${i}`), { executor: db, now: 1_000 });
    const seen: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        outbox.drain(
          async (e) => {
            seen.push(e.id);
          },
          { limit: 15 },
        ),
      ),
    );
    expect(results.reduce((n, r) => n + r.dispatched, 0)).toBe(40);
    expect(new Set(seen).size).toBe(40);
  });
});

forEachEngine("Outbox polling", (ctx) => {
  it("start() dispatches on a timer, retries a failed event later, stop() ends it", async () => {
    const { db } = ctx();
    const outbox = new Outbox({ database: db });
    await appendEvent(
      { topic: "file.deleted", payload: { fileKey: "a", reason: "deleted", owner: "" } },
      { executor: db, now: 1 },
    );
    const seen: string[] = [];
    const errors: unknown[] = [];
    let failOnce = true;
    outbox.start(
      async (e) => {
        if (failOnce) {
          failOnce = false;
          throw new Error("transient");
        }
        if (e.topic === "file.deleted") seen.push(e.payload.fileKey);
      },
      { intervalMs: 10, onError: (err) => errors.push(err) },
    );
    expect(() => outbox.start(async () => {})).toThrow(InvalidArgumentError);
    await expect.poll(() => seen, { timeout: 5_000 }).toEqual(["a"]);
    await outbox.stop();
    expect(errors).toHaveLength(1);
    expect(await outbox.pending()).toEqual([]);
  });
});
