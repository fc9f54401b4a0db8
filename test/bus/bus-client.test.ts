import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type WebSocket, WebSocketServer } from "ws";
import { backoffDelay } from "../../src/bus/backoff.js";
import { BusClient } from "../../src/bus/bus-client.js";
import type { BusClientOptions, BusDelivery } from "../../src/bus/bus-client-options.js";
import { BusDeliveryError } from "../../src/bus/bus-delivery-error.js";
import { PROTOCOL_VERSION } from "../../src/bus/wire/envelope.js";
import { envelopeHmac } from "../../src/bus/wire/envelope-hmac.js";
import { encodeFrame, type Frame, parseFrame } from "../../src/bus/wire/frames.js";
import { MAX_JSON_DEPTH } from "../../src/bus/wire/go-json.js";
import { decodeWireText, wireBytes } from "../../src/bus/wire/wire-text.js";
import { InvalidArgumentError, isStoreError } from "../../src/errors.js";
import { eventually, SECRET } from "./bus-fixtures.js";

/**
 * A scripted broker on a real socket: accepts any register (or refuses every one with
 * `refuse`), records frames, lets the test push frames.
 */
async function fakeBroker(refuse?: { code: number; reason: string }) {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const received: Frame[] = [];
  const sockets: WebSocket[] = [];
  wss.on("connection", (ws) => {
    sockets.push(ws);
    ws.on("message", (data) => {
      const frame = parseFrame((data as Buffer).toString());
      received.push(frame);
      if (frame.type !== "register") return;
      if (refuse !== undefined) ws.close(refuse.code, refuse.reason);
      else ws.send(encodeFrame({ type: "peers", names: [frame.name] }));
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

/** A deliver frame as any broker may send it (signed without signEnvelope's checks). */
function deliver(key: string, id: string, secret = SECRET, body = "{}"): string {
  const env = { protocol_version: PROTOCOL_VERSION, id, from: "a", to: "b", ts: "", source: "t", kind: "msg", body };
  return encodeFrame({ type: "deliver", deliveryKey: key, envelope: { ...env, hmac: envelopeHmac(env, secret) } });
}

const acks = (frames: Frame[]) => frames.flatMap((f) => (f.type === "ack" ? [f.id] : []));

describe("BusClient", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  /** A client named "b" on `url` that records what it is handed and what it reports; closed after the test. */
  function client(url: string, options: Partial<BusClientOptions> = {}) {
    const got: BusDelivery[] = [];
    const errors: unknown[] = [];
    const c = new BusClient({
      url,
      name: "b",
      token: "t",
      hmacSecret: SECRET,
      onMessage: (m) => {
        got.push(m);
      },
      onError: (e) => errors.push(e),
      ...options,
    });
    cleanup.push(() => c.close());
    return Object.assign(c, { got, errors });
  }
  /** A fake broker and a registered client on it, with the broker's side of the socket. */
  async function connected(options: Partial<BusClientOptions> = {}) {
    const fake = await fakeBroker();
    cleanup.push(() => fake.close());
    const c = client(fake.url, options);
    await c.connect();
    return { fake, c, ws: fake.sockets[0] as WebSocket };
  }

  it("hands each id to the handler once (LRU dedupe) but acks every delivery", async () => {
    const { fake, c, ws } = await connected({ dedupeSize: 2 });
    const got = c.got;
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

  it("reports a delivery whose HMAC does not verify once, acks it, and never hands it over", async () => {
    const { fake, c, ws } = await connected();
    const { errors } = c;
    ws.send(deliver("k1", "forged", "x".repeat(40)));
    ws.send(deliver("k2", "good"));
    // Wait for the acks themselves, not for the handler: the ack leaves after the handler returns.
    await eventually(() => acks(fake.received).length === 2);
    expect(c.got.map((m) => m.id)).toEqual(["good"]);
    expect(errors).toEqual([expect.any(BusDeliveryError)]);
    expect(errors[0]).toMatchObject({ reason: "bad_hmac", deliveryKey: "k1" });
    // Acked, so the broker does not hand it out again on the next connection.
    expect(acks(fake.received)).toEqual(["k1", "k2"]);
  });

  for (const refusal of [
    { code: 1008, reason: "invalid bearer token" },
    { code: 1008, reason: "name claimed under a different token" },
    { code: 4403, reason: "name is bound to another token" },
  ]) {
    it(`treats a ${refusal.code} "${refusal.reason}" refusal as final: onError once, connect() rejects, no reconnect`, async () => {
      const fake = await fakeBroker(refusal);
      cleanup.push(() => fake.close());
      const c = client(fake.url, { minBackoffMs: 1, maxBackoffMs: 1 });
      const { errors } = c;
      await expect(c.connect()).rejects.toMatchObject({ closeCode: refusal.code, code: "ACCESS_DENIED" });
      expect(errors).toEqual([expect.objectContaining({ closeCode: refusal.code })]);
      await expect(c.send("x", 1)).rejects.toBe(errors[0]);
      // A barrier: a second client's whole handshake with the same broker. A reconnect after 1 ms
      // would have dialed by then.
      const other = new BusClient({ url: fake.url, name: "o", token: "t", hmacSecret: SECRET, onMessage: () => {} });
      cleanup.push(() => other.close());
      await expect(other.connect()).rejects.toMatchObject({ closeCode: refusal.code });
      expect(fake.received.filter((f) => f.type === "register" && f.name === "b")).toHaveLength(1);
      expect(errors).toHaveLength(1);
    });
  }

  it("verifies and hands over a body with bytes that are not UTF-8 (a Go broker relays them raw); no 1007, no reconnect", async () => {
    const { fake, c, ws } = await connected();
    const { errors } = c;
    // The body holds the raw bytes FF and C3 28 inside a string, signed over those exact bytes.
    const body = decodeWireText(Buffer.from([...Buffer.from('{"s":"'), 0xff, 0xc3, 0x28, ...Buffer.from('"}')])).text;
    ws.send(wireBytes(deliver("k1", "raw", SECRET, body)), { binary: false });
    await eventually(() => acks(fake.received).length === 1);
    expect(c.got.map((m) => m.body)).toEqual([{ s: "\ufffd\ufffd(" }]);
    expect(errors).toEqual([]);
    expect(fake.received.filter((f) => f.type === "register")).toHaveLength(1);
  });

  it("a deliver frame too deep to decode is reported and acked once, and later deliveries still arrive", async () => {
    const { fake, c, ws } = await connected();
    const { errors } = c;
    // Valid for a Go broker as an envelope (depth 10000), one level too deep inside a deliver frame.
    const deep = `${"[".repeat(MAX_JSON_DEPTH - 1)}${"]".repeat(MAX_JSON_DEPTH - 1)}`;
    ws.send(deliver("k-deep", "deep", SECRET, deep));
    ws.send("{not json at all");
    ws.send(deliver("k2", "after"));
    await eventually(() => acks(fake.received).length === 2);
    expect(acks(fake.received)).toEqual(["k-deep", "k2"]);
    expect(c.got.map((m) => m.id)).toEqual(["after"]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({ reason: "malformed", deliveryKey: "k-deep" });
    expect(errors[1]).toMatchObject({ reason: "malformed", deliveryKey: undefined });
    expect(fake.received.filter((f) => f.type === "register")).toHaveLength(1);
  });

  it("hands deliveries over one at a time in arrival order, handlers sync or async; a throw or rejection is reported and not acked", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const events: string[] = [];
    const { fake, c, ws } = await connected({
      onMessage: (m) => {
        events.push(`start ${m.id}`);
        if (m.id === "m2") return gate.then(() => void events.push("end m2"));
        if (m.id === "m3") throw new Error("sync failure");
        if (m.id === "m4") return Promise.reject(new Error("async failure"));
        return undefined;
      },
    });
    for (const i of [1, 2, 3, 4, 5]) ws.send(deliver(`k${i}`, `m${i}`));
    await eventually(() => events.includes("start m2"));
    // m3 waits for m2's handler to settle, however long it takes.
    await eventually(() => acks(fake.received).includes("k1"));
    expect(events).toEqual(["start m1", "start m2"]);
    release();
    await eventually(() => acks(fake.received).includes("k5"));
    expect(events).toEqual(["start m1", "start m2", "end m2", "start m3", "start m4", "start m5"]);
    expect(acks(fake.received)).toEqual(["k1", "k2", "k5"]);
    expect(c.errors.map((e) => (e as Error).message)).toEqual(["sync failure", "async failure"]);
  });

  it("hands over the body's value whether the frame took the fast decoder or the scanner", async () => {
    const { fake, c, ws } = await connected();
    const body = '{"t":"<a & b>","n":[1,2.5e3,-0],"u":"\\u00e9\\ud83d\\ude00","o":{}}';
    ws.send(deliver("k1", "fast", SECRET, body));
    // A member name written with an escape: only the scanner decodes it.
    ws.send(deliver("k2", "scanned", SECRET, body).replace('"delivery_key"', '"delivery\\u005fkey"'));
    await eventually(() => acks(fake.received).length === 2);
    expect(c.got.map((m) => m.id)).toEqual(["fast", "scanned"]);
    for (const m of c.got) expect(m.body).toEqual(JSON.parse(body));
    expect(c.errors).toEqual([]);
  });

  it("close() lets the message being handled finish and acks it before the socket closes", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let handling = 0;
    const { fake, c, ws } = await connected({
      onMessage: () => {
        handling++;
        return gate;
      },
    });
    ws.send(deliver("k1", "m1"));
    await eventually(() => handling === 1);
    const closing = c.close();
    ws.send(deliver("k2", "m2")); // arrives after close(): left to the broker, not handed over
    release();
    await closing;
    expect(acks(fake.received)).toEqual(["k1"]);
    expect(handling).toBe(1);
  });

  it("reconnects after the connection drops and re-registers", async () => {
    const fake = await fakeBroker();
    cleanup.push(() => fake.close());
    const c = client(fake.url);
    await c.connect();
    fake.sockets[0]?.terminate();
    await eventually(() => fake.received.filter((f) => f.type === "register").length === 2);
    await eventually(() => c.connected);
    const id = await c.send("x", [1, 2]);
    // The default id is a ULID, as peerbus clients make them.
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    await eventually(() => fake.received.some((f) => f.type === "envelope" && f.envelope.id === id));
    await c.close();
    await expect(c.send("x", 1)).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("peers() fails with a TIMEOUT error when the broker never answers within peersTimeoutMs", async () => {
    // The fake broker answers register, never a peers request.
    const { fake, c } = await connected({ peersTimeoutMs: 50 });
    const error = await c.peers().catch((err: unknown) => err);
    expect(isStoreError(error, "TIMEOUT")).toBe(true);
    expect(fake.received.filter((f) => f.type === "peers")).toHaveLength(1);
  });

  it("a second close() during the first resolves only once the connection is closed", async () => {
    const { c } = await connected();
    const first = c.close();
    await c.close();
    expect(c.connected).toBe(false);
    await first;
  });

  it("close() rejects a pending peers() with ClosedError at once instead of leaving it to the timeout", async () => {
    // The fake broker never answers a peers request; the timeout is far longer than any test.
    const { fake, c } = await connected({ peersTimeoutMs: 600_000 });
    const pending = c.peers().catch((err: unknown) => err);
    await eventually(() => fake.received.some((f) => f.type === "peers"));
    await c.close();
    expect(await pending).toMatchObject({ code: "CLOSED" });
  });

  it("send refuses an envelope over 1 MiB, a field with a lone surrogate, a bad recipient or id and a body that is not JSON, and writes nothing", async () => {
    const { fake, c } = await connected();
    await expect(c.send("alice", "x".repeat(1024 * 1024))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(c.broadcast({ text: "y".repeat(1024 * 1024) })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(c.send("ali\ud800ce", {})).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(c.send("alice", {}, { id: "id-\udc00" })).rejects.toBeInstanceOf(InvalidArgumentError);
    // What every broker refuses: a direct message to "*" or to no one, an empty id or one with U+0000.
    await expect(c.send("*", {})).rejects.toThrow(/^to must be a peer name/);
    await expect(c.send("", {})).rejects.toThrow(/^to must be a peer name/);
    await expect(c.send("alice", {}, { id: "" })).rejects.toThrow(/^id must be a non-empty string/);
    await expect(c.broadcast({}, { id: "a\u0000b" })).rejects.toThrow(/^id must be a non-empty string/);
    // A body JSON.stringify throws on is refused the same way as one it cannot encode.
    await expect(c.send("alice", { n: 1n })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/^the body does not serialize to JSON/),
    });
    // Just under the limit still goes out, after everything refused above.
    const id = await c.send("alice", "z".repeat(1024 * 1024 - 1024));
    await eventually(() => fake.received.some((f) => f.type === "envelope"));
    expect(fake.received.flatMap((f) => (f.type === "envelope" ? [f.envelope.id] : []))).toEqual([id]);
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
