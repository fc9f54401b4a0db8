import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Broker } from "../../src/bus/broker.js";
import { MessageStore } from "../../src/bus/message-store.js";
import { ManualScheduler } from "../../src/clock.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";
import { carolAwayBobAndAlice, dbPath, eventually, SECRET, startBrokerOn, TOKEN } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-prune-");

function describePrune(engine: string, openDb: () => Promise<Database>): void {
  describe(`${engine}: Broker acked-message retention`, () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const fn of cleanup.splice(0).reverse()) await fn();
    });

    it("the prune job deletes acks older than the window; duplicates inside it are not redelivered; the audit log verifies", async () => {
      const clock = new ManualScheduler(1_000_000);
      const b = await startBrokerOn(await openDb(), { ackedRetentionMs: 10_000, pruneIntervalMs: 1_000, clock }, clock);
      cleanup.push(() => b.stop());
      const { bob, alice } = await carolAwayBobAndAlice(b.url, cleanup);
      const ack = (id: string) => bob.send(`{"protocol_version":"v1","type":"ack","id":"${id}"}`);
      const delivered = (id: string) => bob.waitFor((f) => f.type === "deliver" && f.deliveryKey === id);

      alice.sendMessage("alice", "bob", "old");
      await delivered("old");
      ack("old");
      alice.sendMessage("alice", "bob", "unacked");
      alice.sendMessage("alice", "carol", "queued");
      await delivered("unacked");
      await eventually(async () => (await b.store.get("old"))?.acked === true);
      clock.advance(6_000);
      alice.sendMessage("alice", "bob", "new");
      await delivered("new");
      ack("new");
      await eventually(async () => (await b.store.get("new"))?.acked === true);
      // Inside the window a re-sent id is a duplicate: stored once, delivered once.
      alice.sendMessage("alice", "bob", "old");
      alice.sendMessage("alice", "bob", "marker");
      await delivered("marker");
      expect(bob.delivered()).toEqual(["old", "unacked", "new", "marker"]);
      const auditRows = await b.audit.count();

      clock.advance(5_000);
      await eventually(() => b.broker.prunedAcked === 1);
      expect(await b.store.get("old")).toBeUndefined();
      expect((await b.store.get("new"))?.acked).toBe(true);
      expect((await b.store.get("unacked"))?.acked).toBe(false);
      expect((await b.store.pendingFor("carol")).map((m) => m.id)).toEqual(["queued"]);
      expect(await b.audit.count()).toBe(auditRows);
      expect(await b.audit.verify()).toBeNull();

      // After the window the id is new again: it is stored and delivered (documented).
      alice.sendMessage("alice", "bob", "old");
      await eventually(() => bob.delivered().filter((k) => k === "old").length === 2);
      clock.advance(100_000);
      await eventually(() => b.broker.prunedAcked === 2);
      expect(await b.broker.pruneAcked()).toBe(0);
      expect((await b.store.get("unacked"))?.acked).toBe(false);
      expect(await b.audit.verify()).toBeNull();
    });

    it("prunes a backlog in batches of 1,000 in one run; Infinity keeps every acked row", async () => {
      const clock = new ManualScheduler(1_000);
      const db = await openDb();
      cleanup.push(() => db.close());
      const store = await MessageStore.open({ database: db, clock });
      await store.register({ name: "b" });
      const ids = Array.from({ length: 2_500 }, (_, i) => `m${i}`);
      await store.enqueueMany(ids.map((id) => ({ id, from: "a", to: "b", envelope: new Uint8Array(1) })));
      await store.ackFor("b", ids);
      clock.advance(10);
      const keep = new Broker({ store, tokens: [TOKEN], hmacSecret: SECRET, ackedRetentionMs: Infinity, clock });
      cleanup.push(() => keep.close());
      expect(await keep.pruneAcked()).toBe(0);
      const prune = new Broker({
        store,
        tokens: [TOKEN],
        hmacSecret: SECRET,
        ackedRetentionMs: 0,
        pruneIntervalMs: 0,
        clock,
      });
      cleanup.push(() => prune.close());
      expect(await prune.pruneAcked()).toBe(2_500);
      expect(prune.prunedAcked).toBe(2_500);
      expect(await store.recent(1)).toEqual([]);
    });
  });
}

describePrune("sqlite file", () => openSqlite(dbPath(dir, "prune")));

describe.runIf(hasPostgres)("postgres", () => {
  const pg = useFreshPostgresDatabase();
  describePrune("postgres", () => openPostgres(pg.url, { schema: `bus_${randomBytes(4).toString("hex")}`, max: 4 }));
});

describe("Broker retention defaults", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it("prunes every 60 s the rows acked more than an hour ago", async () => {
    const start = 1_000_000;
    const clock = new ManualScheduler(start);
    const b = await startBrokerOn(await openSqlite(dbPath(dir, "defaults")), { clock }, clock);
    cleanup.push(() => b.stop());
    const { bob, alice } = await carolAwayBobAndAlice(b.url, cleanup);
    const scheduled = clock.pending;
    const ack = async (id: string) => {
      alice.sendMessage("alice", "bob", id);
      await bob.waitFor((f) => f.type === "deliver" && f.deliveryKey === id);
      bob.send(`{"protocol_version":"v1","type":"ack","id":"${id}"}`);
      await eventually(async () => (await b.store.get(id))?.acked === true);
    };
    clock.advance(10_000);
    await ack("early");
    clock.advance(20_000);
    await ack("later");
    // The prune job is due 60 s after the start, not before.
    clock.advance(29_999);
    expect(clock.pending).toBe(scheduled);
    clock.advance(1);
    expect(clock.pending).toBe(scheduled - 1);
    await eventually(() => clock.pending === scheduled);
    // Acked an hour ago plus 10 s: "early" only.
    clock.set(start + 3_620_000);
    await b.broker.pruneAcked();
    expect(b.broker.prunedAcked).toBe(1);
    expect(await b.store.get("early")).toBeUndefined();
    expect((await b.store.get("later"))?.acked).toBe(true);
    clock.set(start + 3_630_001);
    await b.broker.pruneAcked();
    expect(b.broker.prunedAcked).toBe(2);
  });
});

describe("Broker retention options", () => {
  it("refuses a bad ackedRetentionMs or pruneIntervalMs with an error naming it", () => {
    const base = { store: {} as MessageStore, tokens: [TOKEN], hmacSecret: SECRET };
    for (const bad of [-1, Number.NaN, "1h"]) {
      expect(() => new Broker({ ...base, ackedRetentionMs: bad as number })).toThrow(/^ackedRetentionMs must be/);
    }
    for (const bad of [-1, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => new Broker({ ...base, pruneIntervalMs: bad })).toThrow(/^pruneIntervalMs must be/);
    }
  });
});
