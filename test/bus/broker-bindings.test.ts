import { afterEach, describe, expect, it } from "vitest";
import { Broker } from "../../src/bus/broker.js";
import type { BrokerOptions } from "../../src/bus/broker-options.js";
import { BusClose } from "../../src/bus/wire/close-codes.js";
import { ManualClock } from "../../src/clock.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, eventually, RawPeer, type RunningBroker, startBroker } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-bindings-");
const DAY = 24 * 3600 * 1000;

describe("broker: name bindings and broadcast reach", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function broker(
    path: string,
    options: Partial<BrokerOptions> = {},
    clock?: ManualClock,
  ): Promise<RunningBroker> {
    const b = await startBroker(path, options, clock);
    cleanup.push(() => b.stop());
    return b;
  }
  /** The close a registration of `name` under `token` gets (or "registered"). */
  async function attempt(
    b: RunningBroker,
    name: string,
    token: string,
  ): Promise<{ code: number; reason: string } | "registered"> {
    const p = new RawPeer(b.url);
    await p.opened;
    p.send(JSON.stringify({ protocol_version: "v1", type: "register", token, name }));
    const outcome = await Promise.race([
      p.closed,
      p.waitFor((f) => f.type === "peers").then(() => "registered" as const),
    ]);
    await p.close();
    return outcome;
  }

  it("by default a name is bound while connected: takeover on the same token, 1008 on another; free once it disconnects and after a restart", async () => {
    const path = dbPath(dir, "conn");
    const b = await startBroker(path);
    const first = await RawPeer.register(b.url, "bob");
    const second = await RawPeer.register(b.url, "bob");
    expect((await first.closed).code).toBe(1006);
    expect(await attempt(b, "bob", "token-two")).toEqual(BusClose.nameClaimed);
    // The live holder was not disturbed.
    second.send('{"protocol_version":"v1","type":"peers"}');
    await eventually(() => second.frames.filter((f) => f.type === "peers").length === 2);
    await second.close();
    await eventually(() => !b.broker.connectedPeers().includes("bob"));
    expect(await attempt(b, "bob", "token-two")).toBe("registered");
    await b.stop();
    const again = await broker(path);
    expect(await attempt(again, "bob", "token-one")).toBe("registered");
  });

  it("persistent bindings survive disconnects and restarts, then expire after bindingTtlMs unseen", async () => {
    const path = dbPath(dir, "persist");
    const clock = new ManualClock(1_000_000);
    const options = { persistentBindings: true, bindingTtlMs: 2 * DAY };
    const b = await startBroker(path, options, clock);
    const bob = await RawPeer.register(b.url, "bob");
    clock.advance(DAY);
    await bob.close();
    await eventually(async () => (await b.store.peers())[0]?.lastSeen === clock.now());
    expect(await attempt(b, "bob", "token-two")).toEqual(BusClose.nameClaimed);
    await b.stop();
    const again = await broker(path, options, clock);
    expect(await attempt(again, "bob", "token-two")).toEqual(BusClose.nameClaimed);
    clock.advance(2 * DAY - 1);
    expect(await attempt(again, "bob", "token-two")).toEqual(BusClose.nameClaimed);
    clock.advance(2);
    expect(await attempt(again, "bob", "token-two")).toBe("registered");
    expect(await attempt(again, "bob", "token-one")).toEqual(BusClose.nameClaimed);
  });

  it("broadcast copies only for connected peers by default: names that never return leave no rows", async () => {
    const b = await broker(dbPath(dir, "pile"));
    // Adapters with random names that come and go (the pile-up seen against peerbus clients).
    for (let i = 0; i < 14; i++) await (await RawPeer.register(b.url, `adapter-${i}`)).close();
    const bob = await RawPeer.register(b.url, "bob");
    const alice = await RawPeer.register(b.url, "alice");
    cleanup.push(
      () => bob.close(),
      () => alice.close(),
    );
    alice.sendMessage("alice", "*", "b1");
    await bob.waitFor((f) => f.type === "deliver");
    const rows = await b.db.all<{ id: string }>("SELECT id FROM bus_messages ORDER BY id");
    expect(rows.map((r) => r.id)).toEqual(["b1|bob"]);
  });

  it("with broadcastWindowMs, peers seen within the window get a durable copy, older ones none", async () => {
    const clock = new ManualClock(5_000_000);
    const b = await broker(dbPath(dir, "window"), { broadcastWindowMs: 60_000 }, clock);
    await (await RawPeer.register(b.url, "old")).close();
    await eventually(async () => (await b.store.peersSeenWithin(0)).includes("old"));
    clock.advance(120_000);
    await (await RawPeer.register(b.url, "recent")).close();
    await eventually(async () => (await b.store.peersSeenWithin(0)).includes("recent"));
    clock.advance(30_000);
    const alice = await RawPeer.register(b.url, "alice");
    cleanup.push(() => alice.close());
    alice.sendMessage("alice", "*", "b1");
    await eventually(async () => (await b.store.get("b1|recent")) !== undefined);
    expect(await b.store.get("b1|old")).toBeUndefined();
    const recent = await RawPeer.register(b.url, "recent");
    cleanup.push(() => recent.close());
    expect(await recent.waitFor((f) => f.type === "deliver")).toMatchObject({ deliveryKey: "b1|recent" });
  });

  it("refuses bad option values naming the option", async () => {
    const b = await broker(dbPath(dir, "opts"));
    for (const key of ["bindingTtlMs", "broadcastWindowMs"] as const) {
      expect(() => new Broker({ store: b.store, tokens: ["t"], hmacSecret: "s".repeat(32), [key]: -1 })).toThrow(
        new RegExp(`^${key} must be`),
      );
    }
  });
});
