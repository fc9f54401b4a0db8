import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MessageStore } from "../../src/bus/message-store.js";
import { ManualClock } from "../../src/clock.js";
import type { Database } from "../../src/sql/index.js";
import { migrateBusBefore } from "./bus-fixtures.js";
import { type OpenFresh, useFreshStores } from "./message-store-suite.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Seqs that `enqueueMany` hands out from reserved blocks, with several stores on one database; run once per engine. */
export function describeMessageStoreSeqs(engine: string, openFresh: OpenFresh): void {
  describe(`${engine}: MessageStore seq blocks`, () => {
    const stores = useFreshStores(openFresh);
    async function storesOn(db: Database, count: number): Promise<MessageStore[]> {
      const clock = new ManualClock(1_000);
      return Promise.all(Array.from({ length: count }, () => MessageStore.open({ database: db, clock })));
    }
    let n = 0;
    const send = (store: MessageStore, from: string, count = 1) =>
      store.enqueueMany(
        Array.from({ length: count }, () => ({ id: `m${n++}`, from, to: "bob", envelope: bytes("x") })),
      );
    /** The sender's pending messages in delivery order: ids must come back in the order they were sent. */
    const order = async (store: MessageStore, from: string) =>
      (await store.pendingFor("bob")).filter((m) => m.from === from);

    it("property: stores taking turns (and enqueue in between) keep every sender's seqs increasing in send order", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              store: fc.integer({ min: 0, max: 2 }),
              from: fc.constantFrom("a", "b"),
              count: fc.integer({ min: 1, max: 3 }),
              single: fc.boolean(),
            }),
            { minLength: 1, maxLength: 25 },
          ),
          async (steps) => {
            const db = await stores.freshDatabase();
            const all = await storesOn(db, 3);
            await all[0]?.register({ name: "bob" });
            const sent = new Map<string, string[]>();
            for (const step of steps) {
              const store = all[step.store] as MessageStore;
              const ids: string[] = [];
              if (step.single) {
                const id = `m${n++}`;
                await store.enqueue({ id, from: step.from, to: "bob", envelope: bytes("x") });
                ids.push(id);
              } else {
                const first = n;
                expect(await send(store, step.from, step.count)).toEqual(Array(step.count).fill("stored"));
                for (let k = 0; k < step.count; k++) ids.push(`m${first + k}`);
              }
              sent.set(step.from, [...(sent.get(step.from) ?? []), ...ids]);
            }
            for (const [from, ids] of sent) {
              const got = await order(all[0] as MessageStore, from);
              expect(got.map((m) => m.id)).toEqual(ids);
              const seqs = got.map((m) => m.seq);
              expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number))).toBe(true);
            }
          },
        ),
        { numRuns: 10 },
      );
    });

    it("a block whose reservation rolled back is not used again after another store reserved", async () => {
      const db = await stores.freshDatabase();
      const [a, b] = (await storesOn(db, 2)) as [MessageStore, MessageStore];
      await a.register({ name: "bob" });
      // a's first block (1024 seqs) is used up exactly.
      await send(a, "s");
      await send(a, "s", 1023);
      const before = (await order(a, "s")).length;
      // a's next reservation rolls back: the counter is back where it was, a's memory is not.
      const rolledBack = await db
        .transaction(async (tx) => {
          await a.enqueueMany([{ id: `m${n++}`, from: "s", to: "bob", envelope: bytes("x") }], { executor: tx });
          throw new Error("roll back");
        })
        .catch((err: Error) => err.message);
      expect(rolledBack).toBe("roll back");
      expect(await order(a, "s")).toHaveLength(before);
      // b reserves the same block again: the counter now ends where a's rolled-back block ends.
      await send(b, "s");
      await send(a, "s");
      await send(b, "s");
      const got = await order(a, "s");
      const seqs = got.map((m) => m.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number))).toBe(true);
    });

    it("concurrent enqueueMany of one sender through several stores never hands out a seq twice", async () => {
      const db = await stores.freshDatabase();
      const all = await storesOn(db, 3);
      await all[0]?.register({ name: "bob" });
      await Promise.all(
        all.map(async (store) => {
          for (let i = 0; i < 15; i++) await send(store, "s", 1 + (i % 3));
        }),
      );
      const seqs = (await order(all[0] as MessageStore, "s")).map((m) => m.seq);
      expect(seqs).toHaveLength(3 * (5 * 1 + 5 * 2 + 5 * 3));
      expect(new Set(seqs).size).toBe(seqs.length);
    });

    it("a counter written before blocks had holders: the first enqueueMany reserves past it", async () => {
      const db = await stores.freshDatabase();
      await migrateBusBefore(db, "bus/007");
      const clock = new ManualClock(1_000);
      const old = await MessageStore.open({ database: db, migrate: false, clock });
      await old.register({ name: "bob" });
      for (let i = 0; i < 3; i++) await old.enqueue({ id: `old${i}`, from: "s", to: "bob", envelope: bytes("o") });
      const store = await MessageStore.open({ database: db, clock });
      await send(store, "s", 2);
      await send(store, "s");
      const got = await order(store, "s");
      expect(got.map((m) => m.seq).slice(0, 3)).toEqual([0, 1, 2]);
      const seqs = got.map((m) => m.seq);
      expect(seqs).toHaveLength(6);
      expect(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number))).toBe(true);
    });
  });
}
