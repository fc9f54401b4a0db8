import fc from "fast-check";
import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError, InvalidKeyError, NotFoundError } from "../../src/errors.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { Outbox } from "../../src/uploads/outbox.js";
import type { DeleteReason } from "../../src/uploads/pending-delete.js";
import { forEachEngine } from "./engines.js";

forEachEngine("DeleteQueue", (ctx) => {
  const setup = () => {
    const clock = new ManualClock(10_000);
    const { db } = ctx();
    return { db, clock, queue: new DeleteQueue({ database: db, clock }), outbox: new Outbox({ database: db, clock }) };
  };

  it("enqueues rows with their upload id and leases them", async () => {
    const { queue } = setup();
    expect(
      await queue.enqueue([
        { key: "a", reason: "claim_expired", uploadId: "u1" },
        { key: "b", reason: "deleted" },
      ]),
    ).toBe(2);
    const leased = (await queue.lease(10_000, 10, 60_000)).sort((x, y) => x.key.localeCompare(y.key));
    expect(leased.map((r) => [r.key, r.uploadId, r.reason, r.attempts, r.nextAttemptAt])).toEqual([
      ["a", "u1", "claim_expired", 0, 70_000],
      ["b", "", "deleted", 0, 70_000],
    ]);
  });

  it("schedules one row per unique key inside the caller's transaction, idempotent on (key, reason)", async () => {
    const { db, queue } = setup();
    await db.transaction((tx) => queue.schedule(["k1", "k2", "k1"], "replaced", { executor: tx }));
    expect(await queue.schedule(["k1", "k3"], "replaced")).toBe(1);
    expect(await queue.schedule(["k1"], "deleted")).toBe(1);
    const rows = await queue.list();
    expect(rows.map((r) => `${r.key}:${r.reason}`).sort()).toEqual([
      "k1:deleted",
      "k1:replaced",
      "k2:replaced",
      "k3:replaced",
    ]);
  });

  it("drops scheduled rows when the business transaction rolls back", async () => {
    const { db, queue } = setup();
    await expect(
      db.transaction(async (tx) => {
        await queue.schedule(["k"], "deleted", { executor: tx });
        throw new Error("rollback");
      }),
    ).rejects.toThrow("rollback");
    expect(await queue.count()).toBe(0);
  });

  it("treats empty inputs as no-ops and rejects bad rows without inserting any", async () => {
    const { queue } = setup();
    expect(await queue.schedule([], "deleted")).toBe(0);
    expect(await queue.enqueue([])).toBe(0);
    expect(await queue.done([])).toBe(0);
    await expect(
      queue.enqueue([
        { key: "ok", reason: "deleted" },
        { key: "", reason: "deleted" },
      ]),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queue.schedule(["x"], "bogus" as DeleteReason)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queue.lease(0, 0, 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    // A lone key instead of a list is refused, not taken for the list of its characters.
    await expect(queue.schedule("pub/a.png" as unknown as string[], "deleted")).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(queue.enqueue({ key: "k", reason: "deleted" } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queue.done("abc" as unknown as string[])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(queue.lease(Number.NaN, 1, 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    // A key no object store accepts would only be retried until it is dead-lettered.
    for (const key of ["a//b", "/abs", "pub/../x", "https://cdn.example/pub/a.png"]) {
      await expect(queue.schedule(["ok", key], "deleted"), key).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(queue.defer("x", Number.NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await queue.count()).toBe(0);
  });

  it("hides leased rows until the lease ends and returns them afterwards", async () => {
    const { queue } = setup();
    await queue.schedule(["a", "b", "c"], "deleted");
    expect(await queue.lease(10_000, 2, 1_000)).toHaveLength(2);
    expect((await queue.lease(10_000, 10, 1_000)).map((r) => r.key)).toHaveLength(1);
    expect(await queue.lease(10_500, 10, 1_000)).toEqual([]);
    expect(await queue.lease(11_000, 10, 1_000)).toHaveLength(3);
  });

  it("removes done rows and defers failed ones with attempts + 1", async () => {
    const { queue } = setup();
    await queue.schedule(["a", "b"], "deleted");
    const [a, b] = await queue.lease(10_000, 10, 1_000);
    expect(await queue.done([a!.id, "unknown"])).toBe(1);
    await queue.defer(b!.id, 50_000, { lastError: "boom" });
    expect(await queue.get(b!.id)).toMatchObject({ attempts: 1, nextAttemptAt: 50_000, lastError: "boom" });
    expect(await queue.lease(49_999, 10, 1_000)).toEqual([]);
    expect(await queue.lease(50_000, 10, 1_000)).toHaveLength(1);
    await expect(queue.defer(a!.id, 1)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("retires dead-lettered rows for good and writes the event in the same transaction", async () => {
    const { queue, outbox, clock } = setup();
    await queue.schedule(["a"], "deleted");
    const [row] = await queue.lease(10_000, 1, 1_000);
    const dead = await queue.deadLetter(row!.id, { lastError: "denied", errorClass: "access_denied" });
    expect(dead).toMatchObject({ key: "a", attempts: 1, errorClass: "access_denied" });
    expect(await queue.count()).toBe(0);
    clock.advance(10 * 365 * 24 * 3600_000);
    expect(await queue.lease(clock.now(), 10, 1_000)).toEqual([]);
    expect(await queue.deadLetters()).toHaveLength(1);
    expect((await outbox.pending()).map((e) => e.topic)).toEqual(["delete.dead_letter"]);
    await expect(queue.deadLetter(row!.id, { lastError: "", errorClass: "transient" })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it("puts a dead letter back in the queue, due now, and forgets one on request", async () => {
    const { queue, clock } = setup();
    await queue.schedule(["a", "b"], "deleted", { owner: "acme/users/ada" });
    for (const row of await queue.lease(10_000, 2, 1_000)) {
      await queue.deadLetter(row.id, { lastError: "denied", errorClass: "access_denied" });
    }
    const [first, second] = await queue.deadLetters();
    expect(await queue.getDeadLetter(first!.id)).toEqual(first);
    clock.advance(5_000);
    const again = await queue.retryDeadLetter(first!.id);
    expect(again).toMatchObject({ key: first!.key, reason: "deleted", attempts: 0, owner: "acme/users/ada" });
    expect(again.nextAttemptAt).toBe(clock.now());
    expect((await queue.lease(clock.now(), 10, 1_000)).map((r) => r.key)).toEqual([first!.key]);
    await queue.dropDeadLetter(second!.id);
    expect(await queue.deadLetters()).toEqual([]);
    expect(await queue.getDeadLetter(second!.id)).toBeUndefined();
    await expect(queue.retryDeadLetter(second!.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(queue.dropDeadLetter(first!.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("retrying a dead letter whose key is queued again keeps one row, due now", async () => {
    const { queue, clock } = setup();
    await queue.schedule(["a"], "deleted");
    const [row] = await queue.lease(10_000, 1, 1_000);
    const dead = await queue.deadLetter(row!.id, { lastError: "x", errorClass: "transient" });
    await queue.enqueue([{ key: "a", reason: "deleted", nextAttemptAt: 99_000 }]);
    await queue.retryDeadLetter(dead.id);
    const rows = await queue.list();
    expect(rows.map((r) => [r.key, r.nextAttemptAt])).toEqual([["a", clock.now()]]);
  });

  it("concurrent enqueues naming the same keys in opposite orders all complete, each row inserted once", async () => {
    // On PostgreSQL an insert waits for a concurrent insert of the same (key, reason): rows taken
    // in different orders by two transactions would deadlock and the server would abort one.
    const { queue } = setup();
    for (let round = 0; round < 20; round++) {
      const keys = Array.from({ length: 150 }, (_, i) => `r${round}/k${i}`);
      const orders = [keys, [...keys].reverse(), [...keys.slice(75), ...keys.slice(0, 75)]];
      const inserted = await Promise.all(
        orders.map((order) => queue.enqueue(order.map((key) => ({ key, reason: "deleted" as const })))),
      );
      expect(inserted.reduce((a, b) => a + b, 0)).toBe(keys.length);
    }
    expect((await queue.list(5_000)).length).toBe(3_000);
  });

  it("schedule is idempotent for any sequence of calls (property)", async () => {
    const { queue, db } = setup();
    const reasons: DeleteReason[] = ["replaced", "deleted"];
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.array(fc.constantFrom("a", "b", "c", "d", "e"), { maxLength: 6 }), fc.constantFrom(...reasons)),
          {
            maxLength: 8,
          },
        ),
        async (calls) => {
          await db.run("DELETE FROM storeroom_pending_deletes");
          for (const [keys, reason] of calls) await queue.schedule(keys, reason);
          const expected = new Set(calls.flatMap(([keys, reason]) => keys.map((k) => `${k}:${reason}`)));
          const rows = await queue.list();
          expect(rows.map((r) => `${r.key}:${r.reason}`).sort()).toEqual([...expected].sort());
        },
      ),
      { numRuns: 25 },
    );
  });

  it("concurrent leases return disjoint rows and together every due row exactly once (property)", async () => {
    const { queue, db } = setup();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 6 }),
        async (rows, limits) => {
          await db.run("DELETE FROM storeroom_pending_deletes");
          await queue.schedule(
            Array.from({ length: rows }, (_, i) => `key-${i}`),
            "deleted",
          );
          const leases = await Promise.all(limits.map((limit) => queue.lease(10_000, limit, 60_000)));
          const ids = leases.flat().map((r) => r.id);
          expect(new Set(ids).size).toBe(ids.length);
          const total = limits.reduce((a, b) => a + b, 0);
          expect(ids.length).toBe(Math.min(rows, total));
        },
      ),
      { numRuns: 20 },
    );
  });
});
