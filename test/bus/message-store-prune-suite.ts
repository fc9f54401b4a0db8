import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MessageStore } from "../../src/bus/message-store.js";
import { ManualClock } from "../../src/clock.js";
import { migrateBusBefore } from "./bus-fixtures.js";
import { type OpenFresh, useFreshStores } from "./message-store-suite.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Retention of acked messages (`pruneAcked`), run once per engine. */
export function describeMessageStorePrune(engine: string, openFresh: OpenFresh): void {
  describe(`${engine}: MessageStore.pruneAcked`, () => {
    const stores = useFreshStores(openFresh);
    async function fresh(clock = new ManualClock(1_000)) {
      const opened = await stores.fresh(clock);
      for (const name of ["a", "b"]) await opened.store.register({ name });
      return opened;
    }
    const send = (store: MessageStore, id: string) => store.enqueue({ id, from: "a", to: "b", envelope: bytes(id) });

    it("deletes rows acked longer ago than the window, keeps newer acks and every unacked row", async () => {
      const { store, clock } = await fresh();
      for (const id of ["old", "new", "delivered", "queued", "late"]) await send(store, id);
      await store.ackFor("b", ["old"]);
      clock.advance(1_000);
      await store.markAcked("new");
      await store.markDelivered("delivered");
      // A repeated ack keeps the first ack time.
      await store.markAcked("old");
      clock.advance(500);
      expect(await store.pruneAcked(1_000)).toBe(1);
      expect(await store.get("old")).toBeUndefined();
      expect((await store.get("new"))?.acked).toBe(true);
      expect((await store.get("delivered"))?.delivered).toBe(true);
      // Inside the window the acked id is still a duplicate.
      await expect(send(store, "new")).rejects.toMatchObject({ code: "DUPLICATE_ID" });
      expect(await store.enqueueMany([{ id: "new", from: "a", to: "b", envelope: bytes("x") }])).toEqual(["duplicate"]);
      clock.advance(100_000);
      expect(await store.pruneAcked(1_000)).toBe(1);
      expect((await store.pendingFor("b")).map((m) => m.id)).toEqual(["queued", "late"]);
      expect(await store.get("delivered")).toBeDefined();
      // After the window the id is free: a re-send is a new message.
      expect(await store.enqueueMany([{ id: "old", from: "a", to: "b", envelope: bytes("x") }])).toEqual(["stored"]);
    });

    it("deletes at most limit rows per call, oldest ack first; retention 0 deletes every earlier ack", async () => {
      const { store, clock } = await fresh();
      for (let i = 0; i < 7; i++) {
        await send(store, `m${i}`);
        await store.ackFor("b", [`m${i}`]);
        clock.advance(10);
      }
      expect(await store.pruneAcked(0, { limit: 3 })).toBe(3);
      expect(await store.get("m2")).toBeUndefined();
      expect(await store.get("m3")).toBeDefined();
      expect(await store.pruneAcked(0, { limit: 3 })).toBe(3);
      expect(await store.pruneAcked(0, { limit: 3 })).toBe(1);
      expect(await store.pruneAcked(0)).toBe(0);
    });

    it("refuses a bad retention or limit with a typed error naming it and deletes nothing", async () => {
      const { store, clock } = await fresh();
      await send(store, "m");
      await store.markAcked("m");
      clock.advance(10);
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.pruneAcked(bad)).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          message: expect.stringMatching(/^retentionMs must be/),
        });
      }
      for (const limit of [0, 1.5, -2]) {
        await expect(store.pruneAcked(0, { limit })).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          message: expect.stringMatching(/^limit must be/),
        });
      }
      expect(await store.get("m")).toBeDefined();
    });

    it("a table written before ack times were stored: acked rows count as acked when sent, and are pruned", async () => {
      const db = await stores.freshDatabase();
      await migrateBusBefore(db, "bus/006");
      const clock = new ManualClock(1_000);
      const old = await MessageStore.open({ database: db, migrate: false, clock });
      for (const name of ["a", "b"]) await old.register({ name });
      await send(old, "acked");
      await send(old, "pending");
      await db.run("UPDATE bus_messages SET acked = 1, delivered = 1 WHERE id = 'acked'");
      clock.advance(5_000);
      const store = await MessageStore.open({ database: db, clock });
      const ackedAt = await db.get<{ t: number | string | null }>(
        "SELECT acked_at AS t FROM bus_messages WHERE id = 'acked'",
      );
      expect(Number(ackedAt?.t)).toBe(1_000);
      expect(await store.pruneAcked(10_000)).toBe(0);
      expect(await store.pruneAcked(4_000)).toBe(1);
      expect((await store.pendingFor("b")).map((m) => m.id)).toEqual(["pending"]);
    });

    it("concurrent senders, ackers and pruners: unacked rows stay, each expired ack is deleted exactly once", async () => {
      const { store, clock } = await fresh();
      let sending = true;
      let pruned = 0;
      const pruner = async () => {
        while (sending) {
          const n = await store.pruneAcked(0, { limit: 7 });
          pruned += n;
        }
      };
      const sender = async (w: number) => {
        for (let i = 0; i < 30; i++) {
          await send(store, `w${w}-${i}`);
          if (i % 3 !== 0) await store.ackFor("b", [`w${w}-${i}`]);
          clock.advance(1);
        }
      };
      const pruners = [pruner(), pruner()];
      await Promise.all(Array.from({ length: 6 }, (_, w) => sender(w)));
      sending = false;
      await Promise.all(pruners);
      // The pruners deleted rows while others were being stored and acked.
      expect(pruned).toBeGreaterThan(0);
      clock.advance(1);
      for (let n = await store.pruneAcked(0); n > 0; n = await store.pruneAcked(0)) pruned += n;
      expect(pruned).toBe(6 * 20);
      const pending = (await store.pendingFor("b")).map((m) => m.id).sort();
      const unacked = Array.from({ length: 6 }, (_, w) =>
        Array.from({ length: 10 }, (_, k) => `w${w}-${k * 3}`),
      ).flat();
      expect(pending).toEqual(unacked.sort());
      expect(await store.recent(1000)).toHaveLength(60);
    });

    it("property: a prune deletes exactly the rows acked before now minus the window", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ op: fc.constantFrom("send", "deliver", "ack", "tick"), k: fc.nat(5), ms: fc.nat(50) }), {
            maxLength: 30,
          }),
          fc.nat(120),
          async (steps, retention) => {
            const { store, clock } = await fresh();
            const ackedAt = new Map<string, number>();
            const sent = new Set<string>();
            for (const { op, k, ms } of steps) {
              const id = `m${k}`;
              if (op === "tick") clock.advance(ms);
              else if (op === "send" && !sent.has(id)) {
                await send(store, id);
                sent.add(id);
              } else if (op === "deliver") await store.markDelivered(id);
              else if (op === "ack" && sent.has(id)) {
                if ((await store.ackFor("b", [id])).length === 1) ackedAt.set(id, clock.now());
              }
            }
            const cutoff = clock.now() - retention;
            const gone = [...ackedAt].filter(([, t]) => t < cutoff).map(([id]) => id);
            expect(await store.pruneAcked(retention)).toBe(gone.length);
            for (const id of sent)
              expect(await store.get(id)).toEqual(gone.includes(id) ? undefined : expect.anything());
          },
        ),
        { numRuns: 15 },
      );
    });
  });
}
