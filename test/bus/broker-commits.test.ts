import { afterEach, describe, expect, it } from "vitest";
import type { BrokerOptions } from "../../src/bus/broker-options.js";
import { BusClient } from "../../src/bus/bus-client.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import {
  dbPath,
  eventually,
  instrumented,
  RawPeer,
  type RunningBroker,
  SECRET,
  startBrokerOn,
  TOKEN,
} from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-commits-");

describe("broker commit path", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function broker(options: Partial<BrokerOptions> = {}) {
    const counted = instrumented(await openSqlite(dbPath(dir, "c")));
    const b = await startBrokerOn(counted.db, options);
    cleanup.push(() => b.stop());
    return Object.assign(b, counted);
  }
  async function raw(b: RunningBroker, name: string) {
    const p = await RawPeer.register(b.url, name);
    cleanup.push(() => p.close());
    return p;
  }
  /** Everything submitted before this round trip (registrations, first drains) has committed after it. */
  async function settle(from: RawPeer, to: RawPeer, name: string) {
    from.sendMessage(name, "bob", `probe-${name}`);
    await to.waitFor((f) => f.type === "deliver" && f.deliveryKey === `probe-${name}`);
  }
  const kinds = async (b: RunningBroker) =>
    (await b.audit.rows()).map((r) => {
      const e = JSON.parse(Buffer.from(r.event).toString()) as { event: string; id: string };
      return `${e.event} ${e.id}`;
    });

  it("a lone message costs two commits: its row with send and deliver rows, then the ack with its row", async () => {
    const b = await broker();
    const bob = new BusClient({ url: b.url, name: "bob", token: TOKEN, hmacSecret: SECRET, onMessage: () => {} });
    const alice = new BusClient({ url: b.url, name: "alice", token: TOKEN, hmacSecret: SECRET, onMessage: () => {} });
    cleanup.push(
      () => bob.close(),
      () => alice.close(),
    );
    await bob.connect();
    await alice.connect();
    // Everything queued before this probe (registrations, first drains) commits before its ack.
    await alice.send("bob", "probe", { id: "probe" });
    await eventually(async () => (await b.store.get("probe"))?.acked === true);
    const before = b.commits();
    await alice.send("bob", "hello", { id: "m1" });
    await eventually(async () => (await b.store.get("m1"))?.acked === true);
    expect(b.commits() - before).toBe(2);
    expect((await kinds(b)).slice(-3)).toEqual(["send m1", "deliver m1", "ack m1"]);
    expect(await b.audit.verify()).toBeNull();
  });

  it("groups the writes of many connections into few commits, each message still in its sender's order", async () => {
    const b = await broker({ commitWindowMs: 50 });
    const bob = await raw(b, "bob");
    const senders = await Promise.all(["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"].map((n) => raw(b, n)));
    const before = b.commits();
    senders.forEach((s, k) => {
      for (let i = 0; i < 25; i++) s.sendMessage(`s${k}`, "bob", `s${k}-${String(i).padStart(2, "0")}`);
    });
    await eventually(() => bob.delivered().length === 200);
    // 200 messages from 8 connections: without grouping that would be at least 8 commits.
    expect(b.commits() - before).toBeLessThan(8);
    for (let k = 0; k < 8; k++) {
      const mine = bob.delivered().filter((id) => id.startsWith(`s${k}-`));
      expect(mine).toEqual([...mine].sort());
    }
    expect(await b.audit.verify()).toBeNull();
  });

  it("maxCommitBatch bounds a commit", async () => {
    const b = await broker({ commitWindowMs: 50, maxCommitBatch: 16 });
    const bob = await raw(b, "bob");
    const alice = await raw(b, "alice");
    const before = b.commits();
    for (let i = 0; i < 64; i++) alice.sendMessage("alice", "bob", `m${i}`);
    await eventually(() => bob.delivered().length === 64);
    expect(b.commits() - before).toBeGreaterThanOrEqual(4);
  });

  it("nothing leaves before its commit: a failed commit delivers nothing, writes no audit row, and tells the sender", async () => {
    const errors: unknown[] = [];
    const b = await broker({ onError: (e) => errors.push(e) });
    const bob = await raw(b, "bob");
    const alice = await raw(b, "alice");
    await settle(alice, bob, "alice");
    const audited = (await kinds(b)).length;
    b.failCommits(1);
    alice.sendMessage("alice", "bob", "m1");
    expect(await alice.waitFor((f) => f.type === "error")).toMatchObject({ code: "internal", id: "m1" });
    expect(await b.store.get("m1")).toBeUndefined();
    expect((await kinds(b)).length).toBe(audited);
    // The same id sent again goes through, once.
    alice.sendMessage("alice", "bob", "m1");
    alice.sendMessage("alice", "bob", "m2");
    await eventually(() => bob.delivered().length === 3);
    expect(bob.delivered()).toEqual(["probe-alice", "m1", "m2"]);
    expect((await kinds(b)).slice(audited)).toEqual(["send m1", "deliver m1", "send m2", "deliver m2"]);
    expect(errors).toEqual([expect.objectContaining({ message: "injected commit failure" })]);
  });

  it("a failed batch is retried op by op: one connection's failure does not fail another's messages", async () => {
    const errors: unknown[] = [];
    const b = await broker({ commitWindowMs: 50, onError: (e) => errors.push(e) });
    const bob = await raw(b, "bob");
    const alice = await raw(b, "alice");
    const carol = await raw(b, "carol");
    await settle(alice, bob, "alice");
    await settle(carol, bob, "carol");
    // The grouped commit fails; each op then commits alone (the second attempt of alice's fails too).
    b.failCommits(2);
    alice.sendMessage("alice", "bob", "a1");
    carol.sendMessage("carol", "bob", "c1");
    await eventually(() => bob.delivered().length === 3);
    expect(bob.delivered().slice(2)).toEqual(["c1"]);
    expect(await alice.waitFor((f) => f.type === "error")).toMatchObject({ code: "internal", id: "a1" });
    expect(carol.frames.filter((f) => f.type === "error")).toEqual([]);
    expect(errors).toEqual([expect.objectContaining({ message: "injected commit failure" })]);
  });

  it("a reconnect gets what was written to the connection it replaced, in order, once acked never again", async () => {
    const b = await broker();
    const first = await raw(b, "bob");
    const alice = await raw(b, "alice");
    for (let i = 0; i < 30; i++) alice.sendMessage("alice", "bob", `m${String(i).padStart(2, "0")}`);
    await first.waitFor(() => first.delivered().length === 30);
    for (const key of first.delivered().slice(0, 10))
      first.send(`{"protocol_version":"v1","type":"ack","id":"${key}"}`);
    await eventually(async () => (await b.store.get("m09"))?.acked === true);
    const second = await raw(b, "bob");
    await second.waitFor(() => second.delivered().length === 20);
    expect(second.delivered()).toEqual(first.delivered().slice(10));
    expect(await b.audit.verify()).toBeNull();
  });
});
