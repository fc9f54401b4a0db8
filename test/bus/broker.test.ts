import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Broker } from "../../src/bus/broker.js";
import { BusClient } from "../../src/bus/bus-client.js";
import type { BusDelivery } from "../../src/bus/bus-client-options.js";
import { BusClose } from "../../src/bus/wire/close-codes.js";
import { verifyEnvelope } from "../../src/bus/wire/envelope-hmac.js";
import { ManualClock } from "../../src/clock.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, eventually, RawPeer, type RunningBroker, SECRET, startBroker, TOKEN } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-");

describe("Broker", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function broker(path = dbPath(dir, "b")): Promise<RunningBroker> {
    const b = await startBroker(path);
    cleanup.push(() => b.stop());
    return b;
  }
  function client(b: RunningBroker, name: string, onMessage: (m: BusDelivery) => Promise<void> | void, token = TOKEN) {
    const errors: unknown[] = [];
    const c = new BusClient({ url: b.url, name, token, hmacSecret: SECRET, onMessage, onError: (e) => errors.push(e) });
    cleanup.push(() => c.close());
    return Object.assign(c, { errors });
  }
  async function raw(b: RunningBroker, name: string, token = TOKEN) {
    const p = await RawPeer.register(b.url, name, token);
    cleanup.push(() => p.close());
    return p;
  }

  it("delivers a direct message, acks it and writes send/deliver/ack audit rows", async () => {
    const b = await broker();
    const got: BusDelivery[] = [];
    const bob = client(b, "bob", (m) => {
      got.push(m);
    });
    await bob.connect();
    const alice = client(b, "alice", () => {});
    await alice.connect();
    const id = await alice.send("bob", { text: "hi <there> & \u2028" });
    await eventually(() => got.length === 1);
    expect(got[0]).toMatchObject({ id, from: "alice", to: "bob", kind: "msg", body: { text: "hi <there> & \u2028" } });
    expect(got[0]?.deliveryKey).toBe(id);
    await eventually(async () => (await b.store.get(id))?.acked === true);
    // The ack row is written right after the ack transaction commits.
    await eventually(async () => (await b.audit.count()) === 3);
    const events = (await b.audit.rows()).map((r) => JSON.parse(Buffer.from(r.event).toString()));
    expect(events).toEqual([
      { event: "send", id, from: "alice", to: "bob" },
      { event: "deliver", id, from: "alice", to: "bob" },
      { event: "ack", id, from: "bob", to: "" },
    ]);
    expect(await b.audit.verify()).toBeNull();
    expect((await alice.peers()).sort()).toEqual(["alice", "bob"]);
  });

  it("queues for an offline peer and delivers in per-sender order after it reconnects", async () => {
    const b = await broker();
    const bobRaw = await raw(b, "bob");
    await bobRaw.close();
    const alice = client(b, "alice", () => {});
    await alice.connect();
    for (let i = 0; i < 50; i++) await alice.send("bob", { i }, { id: `m${String(i).padStart(3, "0")}` });
    await eventually(async () => (await b.store.pendingFor("bob")).length === 50);
    const got: number[] = [];
    const bob = client(b, "bob", (m) => {
      got.push((m.body as { i: number }).i);
    });
    await bob.connect();
    await eventually(() => got.length === 50);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await eventually(async () => (await b.store.pendingFor("bob")).length === 0);
  });

  it("redelivers unacked messages on reconnect; a failing handler means no ack", async () => {
    const b = await broker();
    const bob1 = await raw(b, "bob");
    const alice = await raw(b, "alice");
    alice.sendMessage("alice", "bob", "m1");
    await bob1.waitFor((f) => f.type === "deliver");
    await bob1.close(); // no ack
    let calls = 0;
    const bob = client(b, "bob", () => {
      calls++;
      if (calls === 1) throw new Error("handler failed");
    });
    await bob.connect();
    await eventually(() => calls === 1);
    expect((await b.store.get("m1"))?.acked).toBe(false);
    // Reconnect: the broker requeues and redelivers; this time the handler succeeds.
    await bob.close();
    const bobAgain = client(b, "bob", () => {
      calls++;
    });
    await bobAgain.connect();
    await eventually(async () => (await b.store.get("m1"))?.acked === true);
    expect(calls).toBe(2);
    expect((await b.store.get("m1"))?.attempts).toBe(3);
  });

  it("broadcast reaches the connected peers, never the sender, with end-to-end HMACs", async () => {
    const b = await broker();
    const carol = await raw(b, "carol");
    await carol.close();
    const bob = await raw(b, "bob");
    const alice = await raw(b, "alice");
    alice.sendMessage("alice", "*", "b1", { all: true });
    const toBob = await bob.waitFor((f) => f.type === "deliver");
    expect(toBob).toMatchObject({ deliveryKey: "b1|bob", envelope: { id: "b1", to: "*", kind: "broadcast" } });
    if (toBob.type === "deliver") expect(verifyEnvelope(toBob.envelope, SECRET)).toBe(true);
    // As peerbus: an offline peer gets no copy (see broker-bindings.test.ts for the window).
    expect(await b.store.get("b1|carol")).toBeUndefined();
    expect(alice.delivered()).toEqual([]);
    expect(await b.store.get("b1|alice")).toBeUndefined();
  });

  it("duplicate sends are stored and delivered once", async () => {
    const b = await broker();
    const bob = await raw(b, "bob");
    const alice = await raw(b, "alice");
    for (let i = 0; i < 5; i++) alice.sendMessage("alice", "bob", "dup", { i });
    alice.sendMessage("alice", "bob", "after");
    await bob.waitFor((f) => f.type === "deliver" && f.deliveryKey === "after");
    expect(bob.delivered()).toEqual(["dup", "after"]);
    const row = await b.store.get("dup");
    expect(JSON.parse(Buffer.from(row?.envelope ?? []).toString()).body).toEqual({ i: 0 });
    const sends = (await b.audit.rows()).filter((r) => Buffer.from(r.event).toString().includes('"send"'));
    expect(sends).toHaveLength(2);
  });

  it("refuses bad handshakes with close codes", async () => {
    const b = await broker();
    const cases: [string, { code: number; reason: string }][] = [
      ["not json", BusClose.malformedHandshake],
      ['{"protocol_version":"v1","type":"peers"}', BusClose.notRegister],
      ['{"protocol_version":"v2","type":"register","token":"token-one","name":"x"}', BusClose.unsupportedVersion],
      ['{"protocol_version":"v1","type":"register","token":"token-one","name":""}', BusClose.emptyName],
      ['{"protocol_version":"v1","type":"register","token":"token-one","name":"*"}', BusClose.invalidName],
      ['{"protocol_version":"v1","type":"register","token":"token-one","name":"a\\u0000"}', BusClose.invalidName],
      ['{"protocol_version":"v1","type":"register","token":"nope","name":"x"}', BusClose.badToken],
    ];
    for (const [text, close] of cases) {
      const p = new RawPeer(b.url);
      await p.opened;
      p.send(text);
      expect(await p.closed, text).toEqual(close);
    }
    expect(await b.store.peers()).toEqual([]);
    const rejected = client(b, "x", () => {}, "nope");
    await expect(rejected.connect()).rejects.toMatchObject({ closeCode: 1008 });
    expect(rejected.errors).toEqual([expect.objectContaining({ closeCode: 1008 })]);
  });

  it("bad frames after register get an error frame, store nothing, and leave others unaffected", async () => {
    const b = await broker();
    const bob = await raw(b, "bob");
    const eve = await raw(b, "eve");
    eve.send("{nope");
    eve.sendMessage("eve", "bob", "forged", {}, "another-secret-another-secret-123");
    eve.sendMessage("mallory", "bob", "spoofed");
    eve.sendMessage("eve", "ghost", "lost");
    eve.send(
      '{"protocol_version":"v9","id":"v","from":"eve","to":"bob","ts":"","source":"","kind":"msg","body":1,"hmac":""}',
    );
    eve.send('{"protocol_version":"v1","type":"ack","id":"not-mine"}');
    await eventually(() => eve.frames.filter((f) => f.type === "error").length === 5);
    expect(eve.frames.flatMap((f) => (f.type === "error" ? [f.code] : [])).sort()).toEqual([
      "bad_hmac",
      "malformed",
      "sender_mismatch",
      "unknown_peer",
      "unsupported_version",
    ]);
    for (const id of ["forged", "spoofed", "lost", "v"]) expect(await b.store.get(id)).toBeUndefined();
    // Oversize frame: the connection is closed with 1009; bob is unaffected.
    eve.send(Buffer.alloc((1 << 20) + 1, 97).toString());
    expect(await eve.closed).toEqual({ code: 1009, reason: "read limited at 1048577 bytes" });
    const alice = await raw(b, "alice");
    alice.sendMessage("alice", "bob", "fine");
    await bob.waitFor((f) => f.type === "deliver" && f.deliveryKey === "fine");
    expect(bob.delivered()).toEqual(["fine"]);
    expect(await b.audit.verify()).toBeNull();
  });

  it("a storage fault is reported, the sender gets an internal error frame, later frames are still handled", async () => {
    const errors: unknown[] = [];
    const b = await startBroker(dbPath(dir, "fault"), { onError: (e) => errors.push(e) });
    cleanup.push(() => b.stop());
    await raw(b, "bob");
    const alice = await raw(b, "alice");
    await b.store.close(); // fault injection: every later store call throws ClosedError
    alice.sendMessage("alice", "bob", "m1");
    alice.send('{"protocol_version":"v1","type":"peers"}');
    await alice.waitFor((f) => f.type === "error");
    await eventually(() => alice.frames.filter((f) => f.type === "peers").length === 2);
    expect(alice.frames.find((f) => f.type === "error")).toMatchObject({ code: "internal", id: "m1" });
    // The send failed, and so may the first drain of a peer that registered just before the fault.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const e of errors) expect(e).toMatchObject({ code: "CLOSED" });
  });

  it("a peer cannot ack another peer's message, and only an ack that newly acks writes an audit row", async () => {
    const b = await broker();
    const bob = await raw(b, "bob");
    const eve = await raw(b, "eve");
    eve.sendMessage("eve", "bob", "m1");
    await bob.waitFor((f) => f.type === "deliver");
    eve.send('{"protocol_version":"v1","type":"ack","id":"m1"}');
    eve.send('{"protocol_version":"v1","type":"peers"}');
    await eventually(() => eve.frames.filter((f) => f.type === "peers").length === 2);
    expect((await b.store.get("m1"))?.acked).toBe(false);
    // Audit rows: send and deliver; a foreign ack wrote none, a repeated ack writes none either.
    const events = async () => (await b.audit.rows()).map((r) => JSON.parse(Buffer.from(r.event).toString()).event);
    expect(await events()).toEqual(["send", "deliver"]);
    bob.send('{"protocol_version":"v1","type":"ack","id":"m1"}');
    await eventually(async () => (await b.store.get("m1"))?.acked === true);
    await eventually(async () => (await b.audit.count()) === 3);
    bob.send('{"protocol_version":"v1","type":"ack","id":"m1"}');
    bob.send('{"protocol_version":"v1","type":"peers"}');
    await eventually(() => bob.frames.filter((f) => f.type === "peers").length === 2);
    expect(await events()).toEqual(["send", "deliver", "ack"]);
    expect(await b.audit.verify()).toBeNull();
  });

  it("many concurrent senders keep per-sender FIFO end to end", async () => {
    const b = await broker();
    const got: BusDelivery[] = [];
    const bob = client(b, "bob", (m) => {
      got.push(m);
    });
    await bob.connect();
    const senders = await Promise.all(["s1", "s2", "s3", "s4"].map((n) => raw(b, n)));
    for (let i = 0; i < 40; i++) {
      senders.forEach((s, k) => {
        s.sendMessage(`s${k + 1}`, "bob", `s${k + 1}-${i}`, { i });
      });
    }
    await eventually(() => got.length === 160, 10_000);
    for (const name of ["s1", "s2", "s3", "s4"]) {
      expect(got.filter((m) => m.from === name).map((m) => (m.body as { i: number }).i)).toEqual(
        Array.from({ length: 40 }, (_, i) => i),
      );
    }
  });

  it("stops reading a peer that sends faster than its frames commit, resumes once they are handled, and loses nothing", async () => {
    const { createServer } = await import("node:http");
    const b = await broker();
    // One message per commit: the frames arrive far faster than they commit.
    const mounted = new Broker({
      store: b.store,
      audit: b.audit,
      tokens: [TOKEN],
      hmacSecret: SECRET,
      maxCommitBatch: 1,
    });
    cleanup.push(() => mounted.close());
    const sockets: { isPaused(): boolean }[] = [];
    // The broker's own pauses (WebSocket#pause; ws's receiver pauses the raw socket directly),
    // counted as they happen: one can begin and end between two looks at isPaused().
    let pauses = 0;
    const pause = WebSocket.prototype.pause;
    WebSocket.prototype.pause = function (this: WebSocket) {
      pauses++;
      pause.call(this);
    };
    cleanup.push(async () => {
      WebSocket.prototype.pause = pause;
    });
    const server = createServer();
    server.on("upgrade", (req, socket, head) => {
      sockets.push(socket);
      mounted.handleUpgrade(req, socket, head);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
    const bob = await RawPeer.register(url, "bob");
    cleanup.push(() => bob.close());
    const alice = await RawPeer.register(url, "alice");
    cleanup.push(() => alice.close());
    const aliceSocket = sockets[1] as { isPaused(): boolean };
    // More than a pump takes at once (1,024) plus the pause mark (2,048): some frames always wait.
    const total = 6000;
    for (let i = 0; i < total; i++) alice.sendMessage("alice", "bob", `m${String(i).padStart(4, "0")}`);
    await eventually(() => bob.delivered().length === total, 60_000);
    expect(pauses).toBeGreaterThan(0);
    expect(bob.delivered()).toEqual(Array.from({ length: total }, (_, i) => `m${String(i).padStart(4, "0")}`));
    expect(aliceSocket.isPaused()).toBe(false);
    expect(alice.frames.filter((f) => f.type === "error")).toEqual([]);
    // 6,000 commits take 15 s on a loaded 2-core machine: more time than a unit test, as much as its wait.
  }, 90_000);

  it("close() marks connected peers seen, closes them with 1001, refuses new connections and leaves the store open", async () => {
    const clock = new ManualClock(1_000);
    const b = await startBroker(dbPath(dir, "close"), {}, clock);
    cleanup.push(() => b.db.close());
    const bob = await RawPeer.register(b.url, "bob");
    clock.advance(5_000);
    await b.broker.close();
    expect(await bob.closed).toEqual({ code: 1001, reason: "server shutting down" });
    expect(await b.store.peers()).toMatchObject([{ name: "bob", firstSeen: 1_000, lastSeen: 6_000 }]);
    expect(await b.store.peersSeenWithin(1)).toEqual(["bob"]);
    // No new connection is accepted.
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(b.url);
      ws.once("open", () => {
        ws.terminate();
        resolve("open");
      });
      ws.once("error", () => resolve("refused"));
    });
    expect(refused).toBe("refused");
    // The store (and its database) stay usable.
    await b.store.register({ name: "carol" });
    expect((await b.store.peers()).map((p) => p.name).sort()).toEqual(["bob", "carol"]);
  });

  it("a second close() during the first resolves only once the broker is shut down", async () => {
    const clock = new ManualClock(1_000);
    const b = await startBroker(dbPath(dir, "close-twice"), {}, clock);
    cleanup.push(() => b.db.close());
    const bob = await RawPeer.register(b.url, "bob");
    clock.advance(5_000);
    const first = b.broker.close();
    await b.broker.close();
    expect(await b.store.peers()).toMatchObject([{ name: "bob", lastSeen: 6_000 }]);
    expect(await bob.closed).toEqual({ code: 1001, reason: "server shutting down" });
    await first;
  });

  it("listen() may be retried after it failed, and refuses with ClosedError after close(), starting no server", async () => {
    const { createServer } = await import("node:http");
    const b = await broker();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as { port: number }).port;
    const own = new Broker({ store: b.store, tokens: [TOKEN], hmacSecret: SECRET });
    cleanup.push(() => own.close());
    await expect(own.listen({ port })).rejects.toMatchObject({ code: "EADDRINUSE" });
    const bound = await own.listen({ port: 0 });
    const p = await RawPeer.register(`ws://127.0.0.1:${bound.port}`, "zoe");
    expect(p.frames[0]).toEqual({ type: "peers", names: ["zoe"] });
    await own.close();
    await expect(own.listen({ port: 0 })).rejects.toMatchObject({ code: "CLOSED" });
    // Closing while the server starts leaves nothing listening either.
    const racing = new Broker({ store: b.store, tokens: [TOKEN], hmacSecret: SECRET });
    const listening = racing.listen({ port: 0 });
    await racing.close();
    await expect(listening).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("mounts on a server of your own through handleUpgrade and closes idempotently", async () => {
    const { createServer } = await import("node:http");
    const b = await broker();
    const mounted = new Broker({ store: b.store, tokens: [TOKEN], hmacSecret: SECRET });
    const server = createServer();
    server.on("upgrade", (req, socket, head) => {
      if (req.url === "/v1/bus") mounted.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const p = await RawPeer.register(`ws://127.0.0.1:${port}/v1/bus`, "zoe");
    expect(p.frames[0]).toEqual({ type: "peers", names: ["zoe"] });
    await mounted.close();
    await mounted.close();
    expect((await p.closed).code).toBe(1001);
    await new Promise<void>((r) => server.close(() => r()));
    expect(() => new Broker({ store: b.store, tokens: [], hmacSecret: SECRET })).toThrow(/token/);
    expect(() => new Broker({ store: b.store, tokens: ["t"], hmacSecret: "short" })).toThrow(/32 bytes/);
  });
});
