import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { WebhookSink, webhookSignature } from "../../src/server/webhook-sink.js";
import { appendEvent, OutboxDispatcher } from "../../src/uploads/index.js";
import { forEachEngine } from "../uploads/engines.js";

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const SECRET = "webhook-secret-0123456789abcdef0123456789";

/** A real HTTP receiver that answers `status()` and records the event ids it accepted. */
async function receiver(
  status: () => number,
): Promise<{ url: string; accepted: number[]; attempts: number[]; server: Server }> {
  const accepted: number[] = [];
  const attempts: number[] = [];
  const server = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      const id = Number(req.headers["storeroom-event-id"]);
      attempts.push(id);
      const code = req.headers["storeroom-signature"] === webhookSignature(SECRET, body) ? status() : 401;
      if (code === 200) accepted.push(id);
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, accepted, attempts, server };
}

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

const deleted = (fileKey: string) =>
  ({ topic: "file.deleted", payload: { fileKey, reason: "deleted", owner: "acme/org" } }) as const;

forEachEngine("webhook sinks", (ctx) => {
  it("a failing webhook backs off and dead-letters on its own; the healthy one gets every event in order, once", async () => {
    const { db } = ctx();
    const clock = new ManualClock(10_000);
    const down = await receiver(() => 500);
    const up = await receiver(() => 200);
    servers.push(down.server, up.server);
    for (const key of ["a", "b", "a", "c"]) await appendEvent(deleted(key), { executor: db, now: clock.now() });
    const ids = (await db.all<{ id: number }>("SELECT id FROM storeroom_upload_outbox ORDER BY id")).map((r) =>
      Number(r.id),
    );
    const dispatcher = new OutboxDispatcher({
      database: db,
      clock,
      // The failing sink first: it must not hold the other back.
      sinks: [new WebhookSink({ url: down.url, secret: SECRET }), new WebhookSink({ url: up.url, secret: SECRET })],
      maxAttempts: 3,
      baseBackoffMs: 1_000,
      intervalMs: 0,
    });
    // Run 1: each key's first event goes to both sinks (a key's next event waits for its predecessor).
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 3, retried: 3, deadLettered: 0 });
    expect(up.accepted).toEqual([ids[0], ids[1], ids[3]]);
    expect(sorted(down.attempts)).toEqual(sorted([ids[0], ids[1], ids[3]] as number[]));
    // Run 2: the healthy sink goes on with the second "a"; the failing one waits out its backoff.
    expect(await dispatcher.runOnce()).toMatchObject({ delivered: 1, retried: 0 });
    expect(sorted(up.accepted)).toEqual(ids);
    expect((await dispatcher.lag()).pending).toBe(4);
    // Backoff 1 s, then 2 s, then dead after the third attempt.
    clock.advance(1_000);
    expect(await dispatcher.runOnce()).toMatchObject({ retried: 3 });
    clock.advance(1_999);
    expect(await dispatcher.runOnce()).toMatchObject({ retried: 0, deadLettered: 0 });
    clock.advance(1);
    expect(await dispatcher.runOnce()).toMatchObject({ deadLettered: 3 });
    // The second "a" is now due at the failing sink (its predecessor is dead there).
    expect(await dispatcher.runOnce()).toMatchObject({ retried: 1 });
    clock.advance(1_000);
    expect(await dispatcher.runOnce()).toMatchObject({ retried: 1 });
    clock.advance(2_000);
    expect(await dispatcher.runOnce()).toMatchObject({ deadLettered: 1 });
    const dead = await dispatcher.deadLetters();
    expect(dead.map((d) => [d.id, d.sink, d.attempts])).toEqual(
      [...ids].reverse().map((id) => [id, `webhook ${new URL(down.url).origin}/hook`, 3]),
    );
    expect(dead[0]?.lastError).toContain("500");
    // The healthy sink got each event exactly once.
    expect(sorted(up.attempts)).toEqual(ids);
    expect(down.attempts).toHaveLength(12);
    expect(await dispatcher.lag()).toEqual({ pending: 0, oldestAgeMs: 0 });
  });

  it("a webhook that recovers gets every event in order per key, after the healthy one already had them", async () => {
    const { db } = ctx();
    const clock = new ManualClock(10_000);
    let healthy = false;
    const flaky = await receiver(() => (healthy ? 200 : 503));
    const up = await receiver(() => 200);
    servers.push(flaky.server, up.server);
    for (const key of ["a", "a", "b", "a"]) await appendEvent(deleted(key), { executor: db, now: clock.now() });
    const ids = (await db.all<{ id: number }>("SELECT id FROM storeroom_upload_outbox ORDER BY id")).map((r) =>
      Number(r.id),
    );
    const dispatcher = new OutboxDispatcher({
      database: db,
      clock,
      sinks: [new WebhookSink({ url: flaky.url, secret: SECRET }), new WebhookSink({ url: up.url, secret: SECRET })],
      baseBackoffMs: 500,
      intervalMs: 0,
    });
    for (let i = 0; i < 3; i++) await dispatcher.runOnce();
    expect(sorted(up.accepted)).toEqual(ids);
    expect(flaky.accepted).toEqual([]);
    healthy = true;
    clock.advance(500);
    for (let i = 0; i < 6 && flaky.accepted.length < ids.length; i++) await dispatcher.runOnce();
    // Every event once, and the three "a" events in their order.
    expect(sorted(flaky.accepted)).toEqual(ids);
    expect(flaky.accepted.filter((id) => id !== ids[2])).toEqual([ids[0], ids[1], ids[3]]);
    expect(sorted(up.attempts)).toEqual(ids);
    expect(await dispatcher.deadLetters()).toEqual([]);
    expect(await dispatcher.lag()).toEqual({ pending: 0, oldestAgeMs: 0 });
  });

  it("refuses two sinks with one name (delivery state is kept by name)", () => {
    const { db } = ctx();
    const sink = { name: "same", deliver: async () => {} };
    expect(() => new OutboxDispatcher({ database: db, sinks: [sink, sink] })).toThrow(/unique names/);
  });
});
