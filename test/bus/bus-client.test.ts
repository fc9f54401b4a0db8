import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { backoffDelay } from "../../src/bus/backoff.js";
import { BusClient } from "../../src/bus/bus-client.js";
import type { BusDelivery } from "../../src/bus/bus-client-options.js";
import { PROTOCOL_VERSION } from "../../src/bus/wire/envelope.js";
import { signEnvelope } from "../../src/bus/wire/envelope-hmac.js";
import { encodeFrame, type Frame, parseFrame } from "../../src/bus/wire/frames.js";
import { eventually, SECRET } from "./bus-fixtures.js";

/** A scripted broker on a real socket: accepts any register, records frames, lets the test push frames. */
async function fakeBroker() {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const received: Frame[] = [];
  const sockets: WebSocket[] = [];
  wss.on("connection", (ws) => {
    sockets.push(ws);
    ws.on("message", (data) => {
      const frame = parseFrame((data as Buffer).toString());
      received.push(frame);
      if (frame.type === "register") ws.send(encodeFrame({ type: "peers", names: [frame.name] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    sockets,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function deliver(key: string, id: string, secret = SECRET): string {
  const envelope = signEnvelope(
    { protocol_version: PROTOCOL_VERSION, id, from: "a", to: "b", ts: "", source: "t", kind: "msg", body: "{}" },
    secret,
  );
  return encodeFrame({ type: "deliver", deliveryKey: key, envelope });
}

describe("BusClient", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it("hands each id to the handler once (LRU dedupe) but acks every delivery", async () => {
    const fake = await fakeBroker();
    cleanup.push(() => fake.close());
    const got: BusDelivery[] = [];
    const c = new BusClient({
      url: fake.url,
      name: "b",
      token: "t",
      hmacSecret: SECRET,
      dedupeSize: 2,
      onMessage: (m) => {
        got.push(m);
      },
    });
    cleanup.push(() => c.close());
    await c.connect();
    const ws = fake.sockets[0] as WebSocket;
    for (const [key, id] of [
      ["k1", "m1"],
      ["k1", "m1"],
      ["k2", "m2"],
      ["k3", "m3"],
      ["k1", "m1"],
    ])
      ws.send(deliver(key as string, id as string));
    await eventually(() => fake.received.filter((f) => f.type === "ack").length === 5);
    // m1 was evicted by m2 and m3 (capacity 2), so its third copy is handed over again.
    expect(got.map((m) => m.id)).toEqual(["m1", "m2", "m3", "m1"]);
    expect(fake.received.flatMap((f) => (f.type === "ack" ? [f.id] : []))).toEqual(["k1", "k1", "k2", "k3", "k1"]);
  });

  it("drops a delivery whose HMAC does not verify, without acking", async () => {
    const fake = await fakeBroker();
    cleanup.push(() => fake.close());
    const errors: unknown[] = [];
    const got: string[] = [];
    const c = new BusClient({
      url: fake.url,
      name: "b",
      token: "t",
      hmacSecret: SECRET,
      onMessage: (m) => {
        got.push(m.id);
      },
      onError: (e) => errors.push(e),
    });
    cleanup.push(() => c.close());
    await c.connect();
    const ws = fake.sockets[0] as WebSocket;
    ws.send(deliver("k1", "forged", "x".repeat(40)));
    ws.send(deliver("k2", "good"));
    await eventually(() => got.length === 1);
    expect(got).toEqual(["good"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ reason: "bad_hmac" });
    expect(fake.received.flatMap((f) => (f.type === "ack" ? [f.id] : []))).toEqual(["k2"]);
  });

  it("reconnects after the connection drops and re-registers", async () => {
    const fake = await fakeBroker();
    cleanup.push(() => fake.close());
    const c = new BusClient({ url: fake.url, name: "b", token: "t", hmacSecret: SECRET, onMessage: () => {} });
    cleanup.push(() => c.close());
    await c.connect();
    fake.sockets[0]?.terminate();
    await eventually(() => fake.received.filter((f) => f.type === "register").length === 2);
    await eventually(() => c.connected);
    const id = await c.send("x", [1, 2]);
    await eventually(() => fake.received.some((f) => f.type === "envelope" && f.envelope.id === id));
    await c.close();
    await expect(c.send("x", 1)).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("backoff grows from 100 ms to a 5 s cap with jitter", () => {
    expect(backoffDelay(0, 100, 5000, () => 0)).toBe(100);
    expect(backoffDelay(0, 100, 5000, () => 1)).toBe(100);
    expect(backoffDelay(3, 100, 5000, () => 0)).toBe(400);
    expect(backoffDelay(3, 100, 5000, () => 1)).toBe(800);
    expect(backoffDelay(50, 100, 5000, () => 0.999)).toBeLessThanOrEqual(5000);
    expect(backoffDelay(50, 100, 5000, () => 0)).toBe(2500);
  });
});
