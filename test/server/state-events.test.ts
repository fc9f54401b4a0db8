import { type AddressInfo, connect as connect_, createServer as createNetServer, type Socket } from "node:net";
import { join } from "node:path";
import { EventSource } from "eventsource";
import { describe, expect, it } from "vitest";
import { ManualScheduler } from "../../src/clock.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

/** Reads SSE frames from a fetch body until `count` events (not comments) arrived. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
): Promise<{ event: string; data: unknown }[]> {
  const decoder = new TextDecoder();
  const events: { event: string; data: unknown }[] = [];
  let buffer = "";
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf("\n\n");
    while (cut >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const lines = frame.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
      if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      cut = buffer.indexOf("\n\n");
    }
  }
  return events;
}

describe("state events over SSE", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();

  it("streams set and delete events of the caller's tenant only", async () => {
    const res = await fetch(`${base}/v1/state/config/events`, { headers: auth(tokens.acme) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain(": watching");
    // Another tenant's write to the same group name must not show up.
    await fetch(`${base}/v1/state/config/colour`, { method: "PUT", headers: auth(tokens.globex), body: "red" });
    await fetch(`${base}/v1/state/other/colour`, { method: "PUT", headers: auth(tokens.acme), body: "green" });
    await fetch(`${base}/v1/state/config/colour`, { method: "PUT", headers: auth(tokens.acme), body: "blue" });
    await fetch(`${base}/v1/state/config/colour`, { method: "DELETE", headers: auth(tokens.acme) });
    const events = await readEvents(reader, 2);
    expect(events[0]).toEqual({
      event: "set",
      data: expect.objectContaining({ type: "set", group: "config", key: "colour", value: "blue" }),
    });
    expect(events[1]).toEqual({
      event: "delete",
      data: expect.objectContaining({ type: "delete", group: "config", key: "colour" }),
    });
    await reader.cancel();
  });

  it("requires identity for the stream", async () => {
    const res = await fetch(`${base}/v1/state/config/events`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNAUTHENTICATED");
  });

  it("ends open streams when the server closes", async () => {
    const res = await fetch(`${base}/v1/state/config/events`, { headers: auth(tokens.ada) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const report = await server.close();
    expect(report).toEqual({ flushed: true, errors: [] });
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});

/**
 * A TCP relay in front of the server whose connections the test can cut, and which can hold
 * new connections until released: a real network disconnect for a real EventSource client.
 */
async function startRelay(targetPort: number) {
  const sockets = new Set<Socket>();
  let held: (() => void)[] | undefined;
  let attempts = 0;
  const relay = createNetServer((client) => {
    attempts++;
    const connect = () => {
      const upstream = connect_(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    };
    if (held === undefined) connect();
    else held.push(connect);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    get attempts() {
      return attempts;
    },
    /** Drops every open connection and holds new ones until {@link release}. */
    cut() {
      held = [];
      for (const s of sockets) s.destroy();
    },
    release() {
      const waiting = held ?? [];
      held = undefined;
      for (const connect of waiting) connect();
    },
    close: () => new Promise<void>((resolve) => relay.close(() => resolve())),
  };
}

interface Received {
  type: string;
  id: string;
  data: { key?: string; value?: string; version?: number };
}

describe("state events resume over SSE", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const h = auth(tokens.ada);
  const put = (path: string, body: string) =>
    fetch(`${base}/v1/state/${path}`, { method: "PUT", headers: h, body }).then((r) => r.headers.get("etag"));

  it("a real EventSource that loses its connection resumes with Last-Event-ID and misses nothing", async () => {
    const relay = await startRelay(Number(new URL(base).port));
    const lastEventIds: (string | null)[] = [];
    const es = new EventSource(`${relay.url}/v1/state/events?prefix=cfg`, {
      fetch: (input, init) => {
        lastEventIds.push(new Headers(init?.headers).get("last-event-id"));
        return fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...h } });
      },
    });
    const received: Received[] = [];
    for (const type of ["set", "delete", "reset"]) {
      es.addEventListener(type, (e) => received.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }));
    }
    try {
      await new Promise<void>((resolve, reject) => {
        es.addEventListener("open", () => resolve(), { once: true });
        es.addEventListener("error", () => reject(new Error("EventSource failed to open")), { once: true });
      });
      const first = await put("cfg-a/x", "1");
      await put("other/y", "ignored");
      const soon = { timeout: 10_000 };
      await expect.poll(() => received.length, soon).toBe(1);
      relay.cut();
      // While the client is cut off, more changes happen, in several groups of the prefix.
      await expect.poll(() => relay.attempts, soon).toBeGreaterThan(1);
      await put("cfg-a/x", "2");
      await put("cfg-b/z", "3");
      await fetch(`${base}/v1/state/cfg-a/x`, { method: "DELETE", headers: h });
      relay.release();
      await expect.poll(() => received.length, soon).toBe(4);
      await put("cfg-b/z", "live again");
      await expect.poll(() => received.length, soon).toBe(5);
      expect(received.map((r) => `${r.type}:${r.data.key}:${r.data.value ?? ""}`)).toEqual([
        "set:x:1",
        "set:x:2",
        "set:z:3",
        "delete:x:",
        "set:z:live again",
      ]);
      // Event ids are the store versions, strictly increasing; the reconnect sent the last one it saw.
      const ids = received.map((r) => Number(r.id));
      expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number))).toBe(true);
      expect(received.map((r) => r.data.version)).toEqual(ids);
      expect(lastEventIds[0]).toBeNull();
      expect(lastEventIds.at(-1)).toBe(JSON.parse(first as string));
    } finally {
      es.close();
      await relay.close();
    }
  });

  it("a Last-Event-ID older than the change log gets event: reset with the current version", async () => {
    const stale = await fetch(`${base}/v1/state/cfg-a/events`, { headers: { ...h, "last-event-id": "0" } });
    const reader = (stale.body as ReadableStream<Uint8Array>).getReader();
    const events = await readEvents(reader, 1);
    await reader.cancel();
    expect(events).toEqual([{ event: "reset", data: { version: expect.any(Number) } }]);
    const bad = await fetch(`${base}/v1/state/cfg-a/events`, { headers: { ...h, "last-event-id": "x" } });
    expect(bad.status).toBe(400);
  });

  it("a stream whose buffer overflows catches up from the change log in order", async () => {
    const res = await fetch(`${base}/v1/state/burst/events`, { headers: h });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const ops = Array.from({ length: 600 }, (_, i) => ({
      op: "set",
      key: `k${String(i).padStart(3, "0")}`,
      value: String(i),
    }));
    const batch = await fetch(`${base}/v1/state/burst`, {
      method: "POST",
      headers: { ...h, "content-type": "application/json" },
      body: JSON.stringify({ ops }),
    });
    expect(batch.status).toBe(200);
    const events = await readEvents(reader, 600);
    await reader.cancel();
    expect(events.map((e) => (e.data as { key: string }).key)).toEqual(ops.map((o) => o.key));
  });
});

describe("tenant state stores in serve deliver their own writes, without polling the change log", async () => {
  const dir = useTempDir();
  // A manual clock that nobody advances: a change-log poll could never run, so every event a
  // stream gets below came from the write's own delivery.
  const clock = new ManualScheduler(Date.now());
  const server = await startServer(join(dir, "no-poll"), { clock });
  const base = await server.listen();

  it("opening tenants and streams schedules no timer (no read transaction per tenant every 250 ms)", async () => {
    const before = clock.pending;
    for (const t of [tokens.acme, tokens.ada, tokens.bob, tokens.globex]) {
      expect((await fetch(`${base}/v1/state/g/k`, { method: "PUT", headers: auth(t), body: "v" })).status).toBe(204);
    }
    const res = await fetch(`${base}/v1/state/g/events`, { headers: auth(tokens.globex) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    expect(clock.pending).toBe(before);
    await reader.cancel();
  });

  it("a stream gets every write of many concurrent writers, once each and in version order", async () => {
    const res = await fetch(`${base}/v1/state/many/events`, { headers: auth(tokens.ada) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain(": watching");
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const statuses = await Promise.all(
      keys.map(
        async (key) =>
          (await fetch(`${base}/v1/state/many/${key}`, { method: "PUT", headers: auth(tokens.ada), body: key })).status,
      ),
    );
    expect(new Set(statuses)).toEqual(new Set([204]));
    const events = await readEvents(reader, keys.length);
    await reader.cancel();
    const data = events.map((e) => e.data as { key: string; value: string; version: number });
    expect(data.map((d) => d.key).sort()).toEqual([...keys].sort());
    expect(data.every((d) => d.value === d.key)).toBe(true);
    const versions = data.map((d) => d.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(keys.length);
  });
});
