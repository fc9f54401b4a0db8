import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { BusClient } from "../../src/bus/index.js";
import { ManualScheduler } from "../../src/clock.js";
import { useTempDir } from "../support/temp-dir.js";
import { TestPeer } from "./bus-peer.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const secret = "b".repeat(48);
/** How long a poll waits for the server to act: a loaded 2-core machine can stall for seconds. */
const WAIT = { timeout: 10_000 };

describe("bus over /v1/bus", async () => {
  const dir = useTempDir();
  const server = await startServer(dir, { busHmacSecret: secret });
  const base = await server.listen();
  const wsUrl = `${base.replace("http", "ws")}/v1/bus`;

  it("delivers direct messages and broadcasts within one org only", async () => {
    const alice = await TestPeer.connect(wsUrl, auth(tokens.acme), "alice", secret);
    const bob = await TestPeer.connect(wsUrl, auth(tokens.ada), "bob", secret);
    // Same peer name in another org: a different broker, never sees acme's traffic.
    const otherBob = await TestPeer.connect(wsUrl, auth(tokens.globex), "bob", secret);
    alice.send("bob", { hello: "bob" }, "m1");
    alice.send("*", { all: true }, "m2");
    const got = await bob.waitFor(2);
    expect(got.map((e) => JSON.parse(e.body))).toEqual([{ hello: "bob" }, { all: true }]);
    // A message of globex's own, after acme's traffic was delivered: the only one the other bob
    // gets, and the only one globex's bus ever stored.
    const gina = await TestPeer.connect(wsUrl, auth(tokens.globex), "gina", secret);
    gina.send("bob", { globex: true }, "g1");
    expect((await otherBob.waitFor(1)).map((e) => e.id)).toEqual(["g1"]);
    const stored = await fetch(`${base}/v1/bus/messages?org=globex`, { headers: auth(tokens.operator) });
    expect(((await stored.json()) as { messages: { id: string }[] }).messages.map((m) => m.id)).toEqual(["g1"]);
    expect(otherBob.deliveries.map((e) => e.id)).toEqual(["g1"]);
    for (const p of [alice, bob, otherBob, gina]) p.close();
  });

  it("queues for an offline peer of the org and delivers on reconnect", async () => {
    const carol = await TestPeer.connect(wsUrl, auth(tokens.acme), "carol", secret);
    carol.close();
    const alice = await TestPeer.connect(wsUrl, auth(tokens.acme), "alice", secret);
    alice.send("carol", { n: 1 }, "m3");
    // Stored for carol, who is away, before she comes back.
    await vi.waitFor(async () => {
      const res = await fetch(`${base}/v1/bus/messages/m3`, { headers: auth(tokens.acmeAdmin) });
      expect(((await res.json()) as { delivered?: boolean }).delivered).toBe(false);
    }, WAIT);
    const back = await TestPeer.connect(wsUrl, auth(tokens.acme), "carol", secret);
    expect((await back.waitFor(1)).map((e) => e.id)).toEqual(["m3"]);
    alice.close();
    back.close();
  });

  it("accepts the library's BusClient, authenticated through its upgrade headers", async () => {
    const received: unknown[] = [];
    const dave = new BusClient({
      url: wsUrl,
      name: "dave",
      token: "dave-peer-token",
      hmacSecret: secret,
      headers: auth(tokens.acme),
      onMessage: (m) => {
        received.push(m.body);
      },
    });
    const erin = new BusClient({
      url: wsUrl,
      name: "erin",
      token: "erin-peer-token",
      hmacSecret: secret,
      headers: auth(tokens.acme),
      onMessage: () => {},
    });
    await dave.connect();
    await erin.connect();
    await erin.send("dave", { hi: "dave" });
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual([{ hi: "dave" }]);
    await dave.close();
    await erin.close();
  });

  it("refuses upgrades without identity, with forged gateway headers, or on other paths", async () => {
    const attempt = (url: string, headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.once("open", () => {
          ws.close();
          resolve(101);
        });
        ws.once("error", () => resolve(-1));
      });
    expect(await attempt(wsUrl, {})).toBe(401);
    expect(await attempt(wsUrl, { "x-org-id": "acme", "x-storeroom-gateway-secret": "x".repeat(40) })).toBe(401);
    expect(await attempt(`${base.replace("http", "ws")}/v1/elsewhere`, auth(tokens.acme))).toBe(404);
    const plain = await fetch(`${base}/v1/bus`, { headers: auth(tokens.acme) });
    expect(plain.status).toBe(426);
  });
});

describe("shutdown with connected peers", () => {
  const dir = useTempDir();
  it("closes the peers' sockets (1001) instead of waiting for them", async () => {
    const server = await startServer(dir, { busHmacSecret: secret });
    const base = await server.listen();
    const peer = await TestPeer.connect(`${base.replace("http", "ws")}/v1/bus`, auth(tokens.acme), "alice", secret);
    const closed = peer.closed();
    expect(await server.close()).toEqual({ flushed: true, errors: [] });
    expect(await closed).toBe(1001);
  });
});

describe("bus peer names bound to the caller's identity", async () => {
  const dir = useTempDir();
  const server = await startServer(dir, { busHmacSecret: secret });
  const base = await server.listen();
  const wsUrl = `${base.replace("http", "ws")}/v1/bus`;

  it("refuses another user's takeover of a name (1008, as a claimed name): the owner stays connected and keeps her queue", async () => {
    const ada = await TestPeer.connect(wsUrl, auth(tokens.ada), "ada", secret);
    const adaClosed = ada.closed();
    // Online: bob cannot displace her.
    expect(await TestPeer.refusedCode(wsUrl, auth(tokens.bob), "ada")).toBe(1008);
    const sender = await TestPeer.connect(wsUrl, auth(tokens.acme), "sender", secret);
    sender.send("ada", { n: 0 }, "live-0");
    expect((await ada.waitFor(1)).map((e) => e.id)).toEqual(["live-0"]);
    ada.close();
    expect(await adaClosed).not.toBe(4409);
    // Offline: her queued messages stay hers.
    for (const i of [1, 2, 3]) sender.send("ada", { n: i }, `queued-${i}`);
    await vi.waitFor(async () => expect(await undelivered()).toBe(3), { timeout: 5000 });
    expect(await TestPeer.refusedCode(wsUrl, auth(tokens.bob), "ada")).toBe(1008);
    expect(await TestPeer.refusedCode(wsUrl, auth(tokens.acme), "ada")).toBe(1008);
    const back = await TestPeer.connect(wsUrl, auth(tokens.ada), "ada", secret);
    expect((await back.waitFor(3)).map((e) => e.id)).toEqual(["queued-1", "queued-2", "queued-3"]);
    back.close();
    sender.close();
  });

  it("lets an org admin list, reassign and release names in its org only", async () => {
    (await TestPeer.connect(wsUrl, auth(tokens.bob), "bob-laptop", secret)).close();
    const list = await fetch(`${base}/v1/bus/names`, { headers: auth(tokens.acmeAdmin) });
    expect(((await list.json()) as { names: { name: string; userId?: string }[] }).names).toContainEqual(
      expect.objectContaining({ orgId: "acme", name: "bob-laptop", userId: "bob" }),
    );
    expect((await fetch(`${base}/v1/bus/names?org=globex`, { headers: auth(tokens.acmeAdmin) })).status).toBe(403);
    expect((await fetch(`${base}/v1/bus/names`, { headers: auth(tokens.bob) })).status).toBe(403);
    const give = await fetch(`${base}/v1/bus/names/bob-laptop`, {
      method: "PUT",
      headers: { ...auth(tokens.acmeAdmin), "content-type": "application/json" },
      body: JSON.stringify({ userId: "ada" }),
    });
    expect(give.status).toBe(200);
    expect(await TestPeer.refusedCode(wsUrl, auth(tokens.bob), "bob-laptop")).toBe(1008);
    (await TestPeer.connect(wsUrl, auth(tokens.ada), "bob-laptop", secret)).close();
    const free = await fetch(`${base}/v1/bus/names/bob-laptop`, { method: "DELETE", headers: auth(tokens.acmeAdmin) });
    expect(free.status).toBe(204);
    (await TestPeer.connect(wsUrl, auth(tokens.bob), "bob-laptop", secret)).close();
    const gone = await fetch(`${base}/v1/bus/names/nobody`, { method: "DELETE", headers: auth(tokens.acmeAdmin) });
    expect(gone.status).toBe(404);
  });

  it("prunes acked messages once their hour of duplicate detection passed, counted in /metrics", async () => {
    const clock = new ManualScheduler(Date.now());
    const own = await startServer(join(dir, "pruning"), { busHmacSecret: secret, clock });
    const url = `${(await own.listen()).replace("http", "ws")}/v1/bus`;
    const pruned = async () =>
      Number(/^storeroom_bus_acked_pruned_total (\d+)$/m.exec((await own.metrics.render()).text)?.[1]);
    try {
      const alice = await TestPeer.connect(url, auth(tokens.acme), "alice", secret);
      const bob = await TestPeer.connect(url, auth(tokens.ada), "bob", secret);
      alice.send("bob", { n: 1 }, "p1");
      alice.send("bob", { n: 2 }, "p2");
      await bob.waitFor(2);
      // bob acks on receipt; each poll moves past the hour of duplicate detection and the job's next run.
      await vi.waitFor(
        async () => {
          clock.advance(61 * 60_000);
          expect(await pruned()).toBe(2);
        },
        { timeout: 5000, interval: 20 },
      );
      alice.close();
      bob.close();
    } finally {
      await own.close();
    }
  });

  it("keeps acked messages for the configured bus.ackedRetentionMs, then prunes them (not the later ones)", async () => {
    const clock = new ManualScheduler(Date.now());
    const retentionMs = 20 * 60_000;
    const own = await startServer(join(dir, "retention"), {
      busHmacSecret: secret,
      clock,
      bus: { ackedRetentionMs: retentionMs },
    });
    const base = await own.listen();
    const url = `${base.replace("http", "ws")}/v1/bus`;
    const admin = auth(tokens.acmeAdmin);
    const message = async (id: string) => {
      const res = await fetch(`${base}/v1/bus/messages/${id}`, { headers: admin });
      return res.status === 404 ? undefined : ((await res.json()) as { acked: boolean });
    };
    const acked = (id: string) => vi.waitFor(async () => expect((await message(id))?.acked).toBe(true), WAIT);
    try {
      const alice = await TestPeer.connect(url, auth(tokens.acme), "alice", secret);
      const bob = await TestPeer.connect(url, auth(tokens.ada), "bob", secret);
      const start = clock.now();
      alice.send("bob", { n: 1 }, "r1");
      await acked("r1");
      clock.advance(15 * 60_000);
      alice.send("bob", { n: 2 }, "r2");
      await acked("r2");
      // Minute by minute: r1 goes at the first prune run past its 20 minutes; r2 has 15 more to go.
      await vi.waitFor(
        async () => {
          clock.advance(61_000);
          expect(await message("r1")).toBeUndefined();
        },
        { timeout: 10_000, interval: 20 },
      );
      expect(clock.now() - start).toBeGreaterThan(retentionMs);
      expect(clock.now() - start).toBeLessThan(15 * 60_000 + retentionMs);
      expect((await message("r2"))?.acked).toBe(true);
      alice.close();
      bob.close();
    } finally {
      await own.close();
    }
  });

  async function undelivered(): Promise<number> {
    const { text } = await server.metrics.render();
    return Number(/storeroom_queue_depth\{queue="bus_pending"\} (\d+)/.exec(text)?.[1]);
  }
});
