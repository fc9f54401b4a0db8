import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openPostgres } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { carolAwayBobAndAlice, eventually, type RunningBroker, startBrokerOn } from "./bus-fixtures.js";

describe.runIf(hasPostgres)("postgres: Broker", () => {
  const pg = useFreshPostgresDatabase();
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function broker(schema = `bus_${randomBytes(4).toString("hex")}`): Promise<RunningBroker> {
    // Carol, seen a moment ago, gets a durable broadcast copy (the window query runs on PostgreSQL).
    const b = await startBrokerOn(await openPostgres(pg.url, { schema, max: 4 }), { broadcastWindowMs: 60_000 });
    cleanup.push(() => b.stop());
    return b;
  }

  it("routes direct, duplicate and broadcast messages in batched transactions and acks them", async () => {
    const b = await broker();
    const { bob, alice } = await carolAwayBobAndAlice(b.url, cleanup);
    for (let i = 0; i < 30; i++) alice.sendMessage("alice", "bob", `m${i}`, { i });
    alice.sendMessage("alice", "bob", "m0", { again: true });
    alice.sendMessage("alice", "ghost", "lost");
    alice.sendMessage("alice", "*", "all");
    await eventually(() => bob.delivered().length === 31);
    expect(bob.delivered()).toEqual([...Array.from({ length: 30 }, (_, i) => `m${i}`), "all|bob"]);
    expect(await alice.waitFor((f) => f.type === "error")).toMatchObject({ code: "unknown_peer", id: "lost" });
    for (const key of bob.delivered()) bob.send(`{"protocol_version":"v1","type":"ack","id":"${key}"}`);
    // The ack rows are written right after the ack transaction commits.
    await eventually(async () => (await b.audit.count()) === 32 + 31 + 31);
    expect((await b.store.pendingFor("carol")).map((m) => m.id)).toEqual(["all|carol"]);
    const kinds = (await b.audit.rows()).map((r) => JSON.parse(Buffer.from(r.event).toString()).event as string);
    expect(kinds.filter((k) => k === "send")).toHaveLength(32);
    expect(kinds.filter((k) => k === "ack")).toHaveLength(31);
    expect(await b.audit.verify()).toBeNull();
  });
});
