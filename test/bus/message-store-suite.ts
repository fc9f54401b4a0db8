import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { MessageStore } from "../../src/bus/message-store.js";
import { ManualClock } from "../../src/clock.js";
import { isStoreError } from "../../src/errors.js";
import { type Database, tableExists } from "../../src/sql/index.js";

/** Opens a fresh, empty database for one test. */
export type OpenFresh = () => Promise<Database>;

/**
 * For a suite (call it inside the suite's `describe`): `fresh(clock)` opens a MessageStore on a
 * database from `openFresh`, `freshDatabase()` the bare database; both are closed after each test.
 */
export function useFreshStores(openFresh: OpenFresh): {
  fresh(clock?: ManualClock): Promise<{ db: Database; clock: ManualClock; store: MessageStore }>;
  freshDatabase(): Promise<Database>;
} {
  const open: Database[] = [];
  afterEach(async () => {
    for (const db of open.splice(0)) await db.close();
  });
  const freshDatabase = async () => {
    const db = await openFresh();
    open.push(db);
    return db;
  };
  return {
    freshDatabase,
    async fresh(clock = new ManualClock(1_000)) {
      const db = await freshDatabase();
      return { db, clock, store: await MessageStore.open({ database: db, clock }) };
    },
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);

/** The MessageStore contract, run once per engine. */
export function describeMessageStore(engine: string, openFresh: OpenFresh): void {
  describe(`${engine}: MessageStore`, () => {
    const { fresh, freshDatabase } = useFreshStores(openFresh);

    it("register is idempotent and keeps the first-seen time", async () => {
      const { store, clock } = await fresh();
      await store.register({ name: "bob" });
      clock.advance(500);
      await store.register({ name: "bob" });
      expect(await store.peers()).toEqual([{ name: "bob", registered: 1_500, firstSeen: 1_000, lastSeen: 1_500 }]);
    });

    it("markSeen and peersSeenWithin: who was connected recently", async () => {
      const { store, clock } = await fresh();
      await store.register({ name: "old" });
      clock.advance(1_000);
      await store.register({ name: "mid" });
      clock.advance(1_000);
      await store.markSeen("old");
      await store.markSeen("ghost"); // unknown: nothing to do
      clock.advance(100);
      expect(await store.peersSeenWithin(100)).toEqual(["old"]);
      expect(await store.peersSeenWithin(1_100)).toEqual(["mid", "old"]);
      expect(await store.peersSeenWithin(Number.POSITIVE_INFINITY)).toEqual(["mid", "old"]);
      await expect(store.peersSeenWithin(-1)).rejects.toThrow(/^windowMs must be/);
    });

    it("rejects bad names with a typed error and stores nothing", async () => {
      const { store } = await fresh();
      for (const name of ["", "*", "a\u0000b", "cut\uD83D", "\uDE80"]) {
        await expect(store.register({ name })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      }
      expect(await store.peers()).toEqual([]);
      await store.register({ name: "bob" });
      const envelope = bytes("{}");
      await expect(store.enqueue({ id: "m\uD800", from: "a", to: "bob", envelope })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      await expect(store.enqueueMany([{ id: "m", from: "a\uDC00", to: "bob", envelope }])).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      expect(await store.pendingFor("bob")).toEqual([]);
    });

    it("countUndelivered counts messages neither delivered nor acked, over all recipients", async () => {
      const { store } = await fresh();
      expect(await store.countUndelivered()).toBe(0);
      for (const name of ["a", "b", "c"]) await store.register({ name });
      for (const [id, to] of [
        ["m1", "b"],
        ["m2", "c"],
        ["m3", "b"],
      ]) {
        await store.enqueue({ id: id as string, from: "a", to: to as string, envelope: bytes(id as string) });
      }
      expect(await store.countUndelivered()).toBe(3);
      await store.markDelivered("m1");
      await store.markAcked("m2");
      expect(await store.countUndelivered()).toBe(1);
    });

    it("recent: the latest messages first, delivered or not, bounded by limit", async () => {
      const { store, clock } = await fresh();
      await store.register({ name: "bob" });
      for (const id of ["m1", "m2", "m3"]) {
        await store.enqueue({ id, from: "alice", to: "bob", envelope: bytes(`{"id":"${id}"}`) });
        clock.advance(10);
      }
      await store.markDelivered("m1");
      const latest = await store.recent(2);
      expect(latest.map((m) => m.id)).toEqual(["m3", "m2"]);
      expect((await store.recent()).map((m) => [m.id, m.delivered])).toEqual([
        ["m3", false],
        ["m2", false],
        ["m1", true],
      ]);
      for (const bad of [0, 1001, 1.5]) await expect(store.recent(bad)).rejects.toThrow(/^limit must be/);
    });

    it("enqueueMany: outcomes instead of throws, duplicates also within the call, seqs in order, delivered rows", async () => {
      const { store, db } = await fresh();
      await store.register({ name: "bob" });
      await store.enqueue({ id: "old", from: "a", to: "bob", envelope: bytes("o") });
      const many = Array.from({ length: 300 }, (_, i) => ({
        id: `m${i}`,
        from: i % 2 ? "a" : "b",
        to: "bob",
        envelope: bytes(`${i}`),
      }));
      const outcomes = await db.transaction((tx) =>
        store.enqueueMany(
          [
            ...many,
            { id: "old", from: "a", to: "bob", envelope: bytes("x") },
            { id: "m0", from: "a", to: "bob", envelope: bytes("again") },
            { id: "ghost", from: "a", to: "nobody", envelope: bytes("x") },
            { id: "live", from: "a", to: "bob", envelope: bytes("l"), delivered: true },
          ],
          { executor: tx },
        ),
      );
      expect(outcomes.slice(0, 300).every((o) => o === "stored")).toBe(true);
      expect(outcomes.slice(300)).toEqual(["duplicate", "duplicate", "unknown_peer", "stored"]);
      expect(Buffer.from((await store.get("m0"))?.envelope ?? []).toString()).toBe("0");
      expect(await store.get("live")).toMatchObject({ delivered: true, attempts: 1, acked: false });
      const pending = await store.pendingFor("bob");
      expect(pending.map((m) => m.id)).not.toContain("live");
      for (const sender of ["a", "b"]) {
        const seqs = pending.filter((m) => m.from === sender).map((m) => m.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(new Set(seqs).size).toBe(seqs.length);
      }
      expect(await store.enqueueMany([])).toEqual([]);
      await expect(store.enqueueMany([{ id: "", from: "a", to: "bob", envelope: bytes("x") }])).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
    });

    it("enqueueMany: names given as registered skip the lookup, the others are still looked up", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.enqueue({ id: "old", from: "a", to: "bob", envelope: bytes("o") });
      const registered = new Set(["bob"]);
      const outcomes = await store.enqueueMany(
        [
          { id: "m1", from: "a", to: "bob", envelope: bytes("1") },
          { id: "old", from: "a", to: "bob", envelope: bytes("x") },
          { id: "m2", from: "a", to: "ghost", envelope: bytes("2") },
          { id: "m3", from: "a", to: "bob", envelope: bytes("3") },
        ],
        { registered },
      );
      expect(outcomes).toEqual(["stored", "duplicate", "unknown_peer", "stored"]);
      expect(Buffer.from((await store.get("old"))?.envelope ?? []).toString()).toBe("o");
      expect(await store.get("m2")).toBeUndefined();
      // A duplicate found by the insert may skip a seq; the sender's seqs still increase.
      const seqs = (await store.pendingFor("bob")).filter((m) => m.from === "a").map((m) => m.seq);
      expect(seqs).toHaveLength(3);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(3);
    });

    it("property: concurrent enqueueMany calls store each id once and report it stored exactly once", async () => {
      // One store for every run (a database per run is slow on a busy PostgreSQL): each run has
      // a recipient and ids of its own.
      const { store } = await fresh();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 6 }), {
            minLength: 2,
            maxLength: 6,
          }),
          async (calls) => {
            const to = `bob${run}`;
            const idOf = (id: number | undefined) => `r${run}-m${id}`;
            run++;
            await store.register({ name: to });
            const results = await Promise.all(
              calls.map((ids, c) =>
                store.enqueueMany(
                  ids.map((id) => ({ id: idOf(id), from: `s${c}`, to, envelope: bytes(`${c}`) })),
                  c % 2 === 0 ? { registered: new Set([to]) } : {},
                ),
              ),
            );
            const storedBy = new Map<string, number[]>();
            results.forEach((outcomes, c) => {
              outcomes.forEach((o, k) => {
                expect(o === "stored" || o === "duplicate").toBe(true);
                const id = idOf(calls[c]?.[k]);
                if (o === "stored") storedBy.set(id, [...(storedBy.get(id) ?? []), c]);
              });
            });
            const distinct = new Set(calls.flat().map(idOf));
            expect([...storedBy.keys()].sort()).toEqual([...distinct].sort());
            for (const [id, callers] of storedBy) {
              expect(callers).toHaveLength(1);
              expect(Buffer.from((await store.get(id))?.envelope ?? []).toString()).toBe(`${callers[0]}`);
            }
            expect(await store.pendingFor(to)).toHaveLength(distinct.size);
          },
        ),
        { numRuns: 10 },
      );
    });

    it("concurrent enqueueMany calls naming the same ids in opposite orders all complete, each id stored once", async () => {
      // On PostgreSQL each insert waits for a concurrent one of the same id: rows taken in
      // different orders by two transactions would deadlock, and the server would abort one.
      const { store } = await fresh();
      await store.register({ name: "bob" });
      for (let round = 0; round < 20; round++) {
        const ids = Array.from({ length: 8 }, (_, i) => `r${round}-m${i}`);
        const orders = [ids, [...ids].reverse(), [...ids.slice(4), ...ids.slice(0, 4)]];
        const results = await Promise.all(
          orders.map((order, c) =>
            store.enqueueMany(order.map((id) => ({ id, from: `s${c}`, to: "bob", envelope: bytes(`${c}`) }))),
          ),
        );
        const stored = results.flatMap((outcomes, c) =>
          outcomes.flatMap((o, k) => (o === "stored" ? [orders[c]?.[k] as string] : [])),
        );
        expect(stored.sort()).toEqual([...ids].sort());
      }
    });

    it("concurrent acks of more ids than one statement takes, in opposite orders, all complete, each id acked once", async () => {
      // Over 256 ids an ack runs several statements in one transaction: on PostgreSQL two of
      // them locking the same rows chunk by chunk in different orders would deadlock.
      const { store } = await fresh();
      await store.register({ name: "bob" });
      for (let round = 0; round < 10; round++) {
        const ids = Array.from({ length: 600 }, (_, i) => `r${round}-m${String(i).padStart(3, "0")}`);
        await store.enqueueMany(ids.map((id) => ({ id, from: "alice", to: "bob", envelope: bytes(id) })));
        const mixed = [...ids.slice(300), ...ids.slice(0, 300)];
        const acked = await Promise.all([
          store.ackFor("bob", ids),
          store.ackFor("bob", [...ids].reverse()),
          store.ackFor("bob", mixed),
        ]);
        expect(acked.flat().sort()).toEqual(ids);
        // Each caller's ids come back in the order it gave them.
        expect(acked[1]).toEqual([...ids].reverse().filter((id) => acked[1]?.includes(id)));
        const marked = await Promise.all([store.markAcked(ids), store.markAcked([...ids].reverse())]);
        expect(marked).toEqual([600, 600]);
        expect(await store.pendingFor("bob")).toEqual([]);
      }
    });

    it("enqueue needs a registered recipient", async () => {
      const { store } = await fresh();
      const err = await store.enqueue({ id: "m1", from: "a", to: "ghost", envelope: bytes("x") }).catch((e) => e);
      expect(isStoreError(err, "UNKNOWN_PEER")).toBe(true);
      expect(await store.get("m1")).toBeUndefined();
      await expect(store.pendingFor("ghost")).rejects.toMatchObject({ code: "UNKNOWN_PEER" });
      await expect(store.requeueUnacked("ghost")).rejects.toMatchObject({ code: "UNKNOWN_PEER" });
    });

    it("a duplicate id throws DuplicateIdError and leaves the row untouched", async () => {
      const { store, clock } = await fresh();
      await store.register({ name: "bob" });
      await store.register({ name: "carol" });
      const first = await store.enqueue({ id: "m1", from: "alice", to: "bob", envelope: bytes("one") });
      await store.markDelivered("m1");
      clock.advance(10);
      const err = await store.enqueue({ id: "m1", from: "eve", to: "carol", envelope: bytes("two") }).catch((e) => e);
      expect(isStoreError(err, "DUPLICATE_ID")).toBe(true);
      const row = await store.get("m1");
      expect(row).toMatchObject({ from: "alice", to: "bob", delivered: true, attempts: 1, seq: 0, ts: first.ts });
      expect(Buffer.from(row?.envelope ?? []).toString()).toBe("one");
      // The failed enqueue did not consume a seq of its sender.
      expect((await store.enqueue({ id: "m2", from: "eve", to: "bob", envelope: bytes("3") })).seq).toBe(0);
    });

    it("pendingFor returns per-sender FIFO and skips delivered and acked rows", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.enqueue({ id: "b0", from: "zed", to: "bob", envelope: bytes("z0") });
      await store.enqueue({ id: "a0", from: "amy", to: "bob", envelope: bytes("a0") });
      await store.enqueue({ id: "a1", from: "amy", to: "bob", envelope: bytes("a1") });
      await store.enqueue({ id: "b1", from: "zed", to: "bob", envelope: bytes("z1") });
      const pending = await store.pendingFor("bob");
      expect(pending.map((m) => [m.id, m.seq])).toEqual([
        ["a0", 0],
        ["a1", 1],
        ["b0", 0],
        ["b1", 1],
      ]);
      expect((await store.pendingFor("bob", { limit: 1 })).map((m) => m.id)).toEqual(["a0"]);
      expect(await store.markDelivered(["a0", "b0", "nope"])).toBe(2);
      expect((await store.pendingFor("bob")).map((m) => m.id)).toEqual(["a1", "b1"]);
      await store.register({ name: "empty" });
      expect(await store.pendingFor("empty")).toEqual([]);
    });

    it("requeueUnacked brings back delivered-but-unacked rows only; a late ack still sticks", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      for (const id of ["m1", "m2", "m3"]) await store.enqueue({ id, from: "a", to: "bob", envelope: bytes(id) });
      await store.markDelivered(["m1", "m2", "m3"]);
      await store.markAcked("m1");
      expect(await store.requeueUnacked("bob")).toBe(2);
      expect((await store.pendingFor("bob")).map((m) => m.id)).toEqual(["m2", "m3"]);
      // An ack that arrives after the requeue (from the old connection) still finishes the message.
      await store.markAcked("m2");
      expect((await store.pendingFor("bob")).map((m) => m.id)).toEqual(["m3"]);
      expect(await store.requeueUnacked("bob")).toBe(0);
      await store.markDelivered("m3");
      expect((await store.get("m3"))?.attempts).toBe(2);
    });

    it("markAcked with a recipient touches only that recipient's rows", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.register({ name: "eve" });
      await store.enqueue({ id: "m1", from: "a", to: "bob", envelope: bytes("x") });
      expect(await store.markAcked(["m1"], { recipient: "eve" })).toBe(0);
      expect((await store.get("m1"))?.acked).toBe(false);
      expect(await store.markAcked(["m1"], { recipient: "bob" })).toBe(1);
    });

    it("ackFor returns exactly the newly acked ids of that recipient", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.register({ name: "eve" });
      for (const id of ["m1", "m2"]) await store.enqueue({ id, from: "a", to: "bob", envelope: bytes(id) });
      await store.enqueue({ id: "e1", from: "a", to: "eve", envelope: bytes("e") });
      expect(await store.ackFor("bob", ["m1", "e1", "ghost"])).toEqual(["m1"]);
      expect(await store.ackFor("bob", ["m1", "m2"])).toEqual(["m2"]);
      expect(await store.ackFor("bob", [])).toEqual([]);
      expect((await store.get("e1"))?.acked).toBe(false);
      expect(await store.pendingFor("bob")).toEqual([]);
    });

    it("property: ackFor returns each id newly acked for that recipient once, in the order given, alone or in the caller's transaction", async () => {
      const { store, db } = await fresh();
      await store.register({ name: "bob" });
      await store.register({ name: "eve" });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(fc.integer({ min: 0, max: 11 }), { maxLength: 300 }), { minLength: 1, maxLength: 4 }),
          fc.boolean(),
          async (calls, inCaller) => {
            // Per run: ids 0-7 for bob, 8-9 for eve, 10-11 never stored.
            const r = run++;
            const id = (n: number) => `r${r}-${n}`;
            await store.enqueueMany(
              Array.from({ length: 10 }, (_, n) => ({
                id: id(n),
                from: "a",
                to: n < 8 ? "bob" : "eve",
                envelope: bytes("x"),
              })),
            );
            const acked = new Set<string>();
            for (const call of calls) {
              const ids = call.map(id);
              const expected = [...new Set(ids)].filter((x) => Number(x.split("-")[1]) < 8 && !acked.has(x));
              const got = inCaller
                ? await db.transaction((tx) => store.ackFor("bob", ids, { executor: tx }))
                : await store.ackFor("bob", ids);
              expect(got).toEqual(expected);
              for (const x of got) acked.add(x);
            }
            for (let n = 0; n < 10; n++) expect((await store.get(id(n)))?.acked).toBe(acked.has(id(n)));
          },
        ),
        { numRuns: 25 },
      );
    });

    it("batches of more than one chunk are marked in one go", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.transaction(async (tx) => {
        for (let i = 0; i < 520; i++) {
          await store.enqueue({ id: `m${i}`, from: "a", to: "bob", envelope: bytes("x") }, { executor: tx });
        }
      });
      const ids = (await store.pendingFor("bob")).map((m) => m.id);
      expect(ids).toHaveLength(520);
      expect(await store.markDelivered(ids)).toBe(520);
      expect(await store.markAcked(ids.slice(0, 10))).toBe(10);
      expect((await store.ackFor("bob", ids)).length).toBe(510);
      expect(await store.requeueUnacked("bob")).toBe(0);
    });

    it("enqueue joins the caller's transaction ({ executor }) and rolls back with it", async () => {
      const { store, db } = await fresh();
      await store.register({ name: "bob" });
      await expect(
        db.transaction(async (tx) => {
          await store.enqueue({ id: "m1", from: "a", to: "bob", envelope: bytes("x") }, { executor: tx });
          throw new Error("business rule failed");
        }),
      ).rejects.toThrow("business rule failed");
      expect(await store.get("m1")).toBeUndefined();
      expect((await store.enqueue({ id: "m1", from: "a", to: "bob", envelope: bytes("x") })).seq).toBe(0);
    });

    it("the deprecated positional executor of enqueue still joins the transaction", async () => {
      const { store, db } = await fresh();
      await store.register({ name: "bob" });
      await expect(
        db.transaction(async (tx) => {
          await store.enqueue({ id: "p1", from: "a", to: "bob", envelope: bytes("x") }, tx);
          expect((await tx.get<{ n: number }>("SELECT count(*) AS n FROM bus_messages WHERE id = 'p1'"))?.n).toBe(1);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await store.get("p1")).toBeUndefined();
    });

    it("the deprecated database getter is the database the store was opened on", async () => {
      const { store, db } = await fresh();
      expect(store.database).toBe(db);
    });

    it("open with migrate: false does not migrate; the default does", async () => {
      const db = await freshDatabase();
      await MessageStore.open({ database: db, migrate: false });
      expect(await tableExists(db, "bus_messages")).toBe(false);
      await MessageStore.open({ database: db });
      expect(await tableExists(db, "bus_messages")).toBe(true);
    });

    it("bindToken: first token wins, survives reopening, another token is refused", async () => {
      const { store, db } = await fresh();
      await store.bindToken("bob", "h1");
      await store.bindToken("bob", "h1");
      await expect(store.bindToken("bob", "h2")).rejects.toMatchObject({ code: "ACCESS_DENIED" });
      const again = await MessageStore.open({ database: db });
      await expect(again.bindToken("bob", "h2")).rejects.toMatchObject({ code: "ACCESS_DENIED" });
      await again.bindToken("bob", "h1");
      expect((await again.peers()).map((p) => p.name)).toEqual(["bob"]);
    });

    it("bindToken with expireAfterMs: a binding unseen for longer than that is taken over; a refusal changes nothing", async () => {
      const { store, clock } = await fresh();
      await store.bindToken("bob", "h1", { expireAfterMs: 1_000 });
      clock.advance(1_000);
      await expect(store.bindToken("bob", "h2", { expireAfterMs: 1_000 })).rejects.toMatchObject({
        code: "ACCESS_DENIED",
      });
      expect((await store.peers())[0]?.lastSeen).toBe(1_000);
      await store.markSeen("bob");
      clock.advance(1_001);
      // Without expiry the stored binding still holds.
      await expect(store.bindToken("bob", "h2")).rejects.toMatchObject({ code: "ACCESS_DENIED" });
      await store.bindToken("bob", "h2", { expireAfterMs: 1_000 });
      await expect(store.bindToken("bob", "h1", { expireAfterMs: 1_000 })).rejects.toMatchObject({
        code: "ACCESS_DENIED",
      });
      await expect(store.bindToken("bob", "h2", { expireAfterMs: -1 })).rejects.toThrow(/^expireAfterMs must be/);
    });

    it("windows longer than any time and a clock with fractional ms work on every engine", async () => {
      const { store, clock } = await fresh(new ManualClock(10_000.5));
      await store.register({ name: "bob" });
      await store.bindToken("carol", "h1", { expireAfterMs: 1e300 });
      await expect(store.bindToken("carol", "h2", { expireAfterMs: 1e20 })).rejects.toMatchObject({
        code: "ACCESS_DENIED",
      });
      const m = await store.enqueue({ id: "m1", from: "alice", to: "bob", envelope: bytes("x") });
      expect(m.ts).toBe(10_000);
      expect(await store.enqueueMany([{ id: "m2", from: "alice", to: "bob", envelope: bytes("y") }])).toEqual([
        "stored",
      ]);
      expect(await store.markAcked(["m1", "m2"])).toBe(2);
      expect(await store.ackFor("bob", ["m1"])).toEqual([]);
      await store.markSeen("bob");
      clock.advance(1_000.25);
      for (const window of [1e20, 1e300, Number.MAX_VALUE]) {
        expect(await store.peersSeenWithin(window)).toEqual(["bob", "carol"]);
        expect(await store.pruneAcked(window)).toBe(0);
      }
      expect(await store.peersSeenWithin(1_000.75)).toEqual(["bob", "carol"]);
      expect(await store.peersSeenWithin(1_000.5)).toEqual([]);
      expect(await store.pruneAcked(999.5)).toBe(2);
    });

    it("ids, message lists and limits of the wrong type are InvalidArgumentErrors", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      const bad = [
        () => store.markAcked(5 as unknown as string),
        () => store.markDelivered({ id: "m" } as unknown as string),
        () => store.ackFor("bob", "m1" as unknown as string[]),
        () => store.enqueueMany(null as unknown as []),
        () => store.pendingFor("bob", { limit: 1e21 }),
        () => store.peersSeenWithin("5" as unknown as number),
        () => store.bindToken("bob", "h", { expireAfterMs: "5" as unknown as number }),
      ];
      for (const call of bad) await expect(call()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect((await store.peers()).map((p) => p.name)).toEqual(["bob"]);
    });

    it("close makes every later call throw ClosedError", async () => {
      const { store } = await fresh();
      await store.register({ name: "bob" });
      await store.close();
      await store.close();
      const calls = [
        () => store.register({ name: "x" }),
        () => store.enqueue({ id: "m", from: "a", to: "bob", envelope: bytes("x") }),
        () => store.pendingFor("bob"),
        () => store.markDelivered("m"),
        () => store.markAcked(["m"]),
        () => store.requeueUnacked("bob"),
        () => store.peers(),
      ];
      for (const call of calls) await expect(call()).rejects.toMatchObject({ code: "CLOSED" });
    });

    it("property: per-sender FIFO under many concurrent senders", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 60 }), async (senders) => {
          const { store } = await fresh();
          await store.register({ name: "bob" });
          const sentOrder = new Map<string, string[]>();
          // Each sender sends sequentially; senders run concurrently.
          const bySender = new Map<number, string[]>();
          for (const s of senders) {
            const ids = bySender.get(s) ?? [];
            ids.push(`s${s}-${ids.length}`);
            bySender.set(s, ids);
          }
          await Promise.all(
            [...bySender].map(async ([s, ids]) => {
              for (const id of ids) {
                await store.enqueue({ id, from: `sender${s}`, to: "bob", envelope: bytes(id) });
                sentOrder.set(`sender${s}`, [...(sentOrder.get(`sender${s}`) ?? []), id]);
              }
            }),
          );
          const pending = await store.pendingFor("bob");
          expect(pending).toHaveLength(senders.length);
          for (const [sender, ids] of sentOrder) {
            const got = pending.filter((m) => m.from === sender);
            expect(got.map((m) => m.id)).toEqual(ids);
            expect(got.map((m) => m.seq)).toEqual(ids.map((_, i) => i));
          }
        }),
        { numRuns: 10 },
      );
    });

    it("property: an id is stored at most once, whatever the interleaving", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ id: fc.integer({ min: 0, max: 5 }), from: fc.constantFrom("a", "b", "c") }), {
            minLength: 1,
            maxLength: 40,
          }),
          async (sends) => {
            const { store } = await fresh();
            await store.register({ name: "bob" });
            const results = await Promise.allSettled(
              sends.map((s) => store.enqueue({ id: `m${s.id}`, from: s.from, to: "bob", envelope: bytes(s.from) })),
            );
            const distinct = new Set(sends.map((s) => s.id)).size;
            expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(distinct);
            for (const r of results) {
              if (r.status === "rejected") expect(isStoreError(r.reason, "DUPLICATE_ID")).toBe(true);
            }
            const pending = await store.pendingFor("bob");
            expect(pending).toHaveLength(distinct);
            // Seqs stay dense per sender: a rejected duplicate never burns one.
            for (const from of ["a", "b", "c"]) {
              const seqs = pending.filter((m) => m.from === from).map((m) => m.seq);
              expect(seqs).toEqual(seqs.map((_, i) => i));
            }
          },
        ),
        { numRuns: 10 },
      );
    });

    it("property: at-least-once; delivered-but-unacked comes back, acked never does", async () => {
      const step = fc.oneof(
        fc.record({ op: fc.constant("deliver" as const), n: fc.integer({ min: 1, max: 5 }) }),
        fc.record({ op: fc.constant("ack" as const), i: fc.integer({ min: 0, max: 9 }) }),
        fc.record({ op: fc.constant("requeue" as const) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
          const { store } = await fresh();
          await store.register({ name: "bob" });
          const ids = Array.from({ length: 10 }, (_, i) => `m${i}`);
          for (const id of ids) await store.enqueue({ id, from: "a", to: "bob", envelope: bytes(id) });
          const acked = new Set<string>();
          const delivered = new Set<string>();
          for (const s of steps) {
            if (s.op === "deliver") {
              const batch = (await store.pendingFor("bob", { limit: s.n })).map((m) => m.id);
              await store.markDelivered(batch);
              for (const id of batch) delivered.add(id);
            } else if (s.op === "ack") {
              await store.markAcked(ids[s.i] as string);
              acked.add(ids[s.i] as string);
            } else {
              await store.requeueUnacked("bob");
              delivered.clear();
            }
          }
          await store.requeueUnacked("bob");
          const pending = new Set((await store.pendingFor("bob")).map((m) => m.id));
          for (const id of ids) expect(pending.has(id)).toBe(!acked.has(id));
        }),
        { numRuns: 12 },
      );
    });
  });
}
