import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

interface SseEvent {
  id: string;
  event: string;
  data: { id: number; topic: string; payload: Record<string, string> };
}

/**
 * Opens an SSE stream and resolves once its response arrived: without a Last-Event-ID the stream
 * starts after the events that exist by then, so a test makes its events only after this. `events`
 * reads the stream until `done(events)` holds or the deadline passes, then closes it.
 */
async function openEvents(
  url: string,
  headers: Record<string, string>,
  done: (events: SseEvent[]) => boolean,
): Promise<{ events: Promise<SseEvent[]> }> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  return { events: collectEvents(res, controller, done) };
}

/** Reads an SSE stream until `done(events)` holds or the deadline passes, then closes it. */
async function readEvents(url: string, headers: Record<string, string>, done: (events: SseEvent[]) => boolean) {
  return (await openEvents(url, headers, done)).events;
}

async function collectEvents(res: Response, controller: AbortController, done: (events: SseEvent[]) => boolean) {
  const events: SseEvent[] = [];
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 15_000;
  // One read stays pending across polls: a second read would take the chunk the first one is waiting for.
  let pending: ReturnType<typeof reader.read> | undefined;
  try {
    while (!done(events) && Date.now() < deadline) {
      pending ??= reader.read();
      const chunk = await Promise.race([pending, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]);
      if (chunk === undefined) continue;
      pending = undefined;
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
      for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const fields = Object.fromEntries(
          block
            .split("\n")
            .filter((line) => !line.startsWith(":") && line.includes(": "))
            .map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
        );
        if (fields.data !== undefined)
          events.push({ id: fields.id ?? "", event: fields.event ?? "", data: JSON.parse(fields.data) });
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

describe("upload events: webhooks and GET /v1/events", async () => {
  const dir = useTempDir();
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  let refuseFirst = true;
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      const refuse = refuseFirst;
      refuseFirst = false;
      res.writeHead(refuse ? 503 : 204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  afterAll(() => new Promise<void>((r) => receiver.close(() => r())));
  const secret = "webhook-secret-0123456789abcdef-0123";
  const server = await startServer(dir, {
    intervals: { deleteMs: 20 },
    events: {
      webhooks: [`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`],
      secret,
      dispatchMs: 20,
      pollMs: 20,
    },
  });
  const base = await server.listen();

  const uploadAndDelete = async (token: string) => {
    const init = (await (
      await fetch(`${base}/v1/uploads`, {
        method: "POST",
        headers: { ...auth(token), "content-type": "application/json" },
        body: JSON.stringify({ filename: "e.txt", size: 5 }),
      })
    ).json()) as { claimId: string };
    await fetch(`${base}/v1/uploads/${init.claimId}/parts/1`, { method: "PUT", headers: auth(token), body: "hello" });
    const done = (await (
      await fetch(`${base}/v1/uploads/${init.claimId}/complete`, { method: "POST", headers: auth(token) })
    ).json()) as { key: string; url: string };
    expect((await fetch(`${base}${done.url}`, { method: "DELETE", headers: auth(token) })).status).toBe(204);
    return done.key;
  };

  it("streams the caller's file.deleted events live, resumes after Last-Event-ID, and hides other orgs' events", {
    timeout: 30_000,
  }, async () => {
    // Every stream is open (so starts at the current position) before the first event is made.
    const [{ events: live }, { events: stranger }, { events: bobs }, { events: admin }] = await Promise.all([
      openEvents(`${base}/v1/events`, auth(tokens.ada), (events) => events.length >= 1),
      openEvents(`${base}/v1/events`, auth(tokens.globex), (events) => events.length >= 1),
      openEvents(`${base}/v1/events`, auth(tokens.bob), (events) => events.length >= 1),
      openEvents(`${base}/v1/events`, auth(tokens.acmeAdmin), (events) => events.length >= 2),
    ]);
    const key = await uploadAndDelete(tokens.ada);
    const [seen] = await live;
    expect(seen?.event).toBe("file.deleted");
    expect(seen?.data.payload).toEqual({ fileKey: key, reason: "deleted", owner: "acme/users/ada" });
    // Later events of other callers end the other streams: each saw only its own scope.
    const bobKey = await uploadAndDelete(tokens.bob);
    const globexKey = await uploadAndDelete(tokens.globex);
    expect((await bobs).map((e) => e.data.payload.fileKey)).toEqual([bobKey]);
    expect((await stranger).map((e) => e.data.payload.fileKey)).toEqual([globexKey]);
    expect((await admin).map((e) => e.data.payload.fileKey)).toEqual([key, bobKey]);
    const resumed = await readEvents(`${base}/v1/events`, { ...auth(tokens.ada), "last-event-id": "0" }, (events) =>
      events.some((e) => e.data.payload.fileKey === key),
    );
    expect(resumed.map((e) => e.data.payload.fileKey)).toEqual([key]);
    const after = readEvents(
      `${base}/v1/events?lastEventId=${seen?.id}`,
      auth(tokens.ada),
      (events) => events.length >= 1,
    );
    const next = await uploadAndDelete(tokens.ada);
    expect((await after).map((e) => e.data.payload.fileKey)).toEqual([next]);
    expect((await fetch(`${base}/v1/events`)).status).toBe(401);
    expect((await fetch(`${base}/v1/events`, { headers: { ...auth(tokens.ada), "last-event-id": "x" } })).status).toBe(
      400,
    );
  });

  it("POSTs every event to the webhook signed with HMAC-SHA256, retrying a refused delivery", {
    timeout: 30_000,
  }, async () => {
    const key = await uploadAndDelete(tokens.bob);
    const deadline = Date.now() + 15_000;
    const delivered = () => received.filter((r) => JSON.parse(r.body).payload.fileKey === key);
    while (delivered().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const [hook] = delivered();
    expect(hook).toBeDefined();
    const body = JSON.parse(hook?.body as string);
    expect(body).toMatchObject({ topic: "file.deleted", payload: { fileKey: key, owner: "acme/users/bob" } });
    expect(hook?.headers["storeroom-event-id"]).toBe(String(body.id));
    expect(hook?.headers["storeroom-signature"]).toBe(
      `sha256=${createHmac("sha256", secret)
        .update(hook?.body as string)
        .digest("hex")}`,
    );
    // The first delivery of all was refused with 503 and delivered again later.
    const firstId = JSON.parse(received[0]?.body as string).id;
    const attemptsOfFirst = () => received.filter((r) => JSON.parse(r.body).id === firstId).length;
    while (attemptsOfFirst() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(attemptsOfFirst()).toBeGreaterThanOrEqual(2);
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth(tokens.operator) })).text();
    expect(metrics).toMatch(/storeroom_outbox_failures_total\{outcome="retry",sink="webhook http:[^"]+"\} [1-9]/);
    expect(metrics).toMatch(/storeroom_outbox_delivered_total\{sink="webhook http:[^"]+"\} [1-9]/);
    expect(metrics).toMatch(/storeroom_outbox_lag_seconds /);
  });
});
