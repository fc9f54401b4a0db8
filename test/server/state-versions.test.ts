import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

describe("state over HTTP: versions, conditional writes, batches", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const h = auth(tokens.globex);
  const put = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/state/${path}`, { method: "PUT", headers: { ...h, ...headers }, body });

  it("GET carries the version as a strong ETag; If-None-Match answers 304; TTL shows as x-expires-at", async () => {
    const res = await put("v/k", "one");
    expect(res.status).toBe(204);
    const etag = res.headers.get("etag") as string;
    expect(etag).toMatch(/^"\d+"$/);
    const got = await fetch(`${base}/v1/state/v/k`, { headers: h });
    expect(got.headers.get("etag")).toBe(etag);
    expect(await got.text()).toBe("one");
    expect((await fetch(`${base}/v1/state/v/k`, { headers: { ...h, "if-none-match": etag } })).status).toBe(304);
    await put("v/t?ttl=60000", "short");
    const ttl = await fetch(`${base}/v1/state/v/t`, { headers: h });
    expect(Number(ttl.headers.get("x-expires-at"))).toBeGreaterThan(Date.now());
  });

  it("PUT with If-Match writes only over that version; a stale one gets 412 with the current ETag", async () => {
    const first = (await put("cas/k", "1")).headers.get("etag") as string;
    const second = await put("cas/k", "2", { "if-match": first });
    expect(second.status).toBe(204);
    const current = second.headers.get("etag") as string;
    const stale = await put("cas/k", "lost", { "if-match": first });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("etag")).toBe(current);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("VERSION_CONFLICT");
    expect(await (await fetch(`${base}/v1/state/cas/k`, { headers: h })).text()).toBe("2");
    // If-Match: * needs the entry to exist; a list matches any of its tags.
    expect((await put("cas/none", "x", { "if-match": "*" })).status).toBe(412);
    expect((await put("cas/k", "3", { "if-match": "*" })).status).toBe(204);
    const now = (await fetch(`${base}/v1/state/cas/k`, { headers: h })).headers.get("etag") as string;
    expect((await put("cas/k", "4", { "if-match": `"1", ${now}` })).status).toBe(204);
  });

  it("If-None-Match: * creates only; DELETE honours If-Match", async () => {
    expect((await put("once/k", "a", { "if-none-match": "*" })).status).toBe(204);
    expect((await put("once/k", "b", { "if-none-match": "*" })).status).toBe(412);
    const etag = (await fetch(`${base}/v1/state/once/k`, { headers: h })).headers.get("etag") as string;
    const wrong = await fetch(`${base}/v1/state/once/k`, {
      method: "DELETE",
      headers: { ...h, "if-match": '"999999"' },
    });
    expect(wrong.status).toBe(412);
    const right = await fetch(`${base}/v1/state/once/k`, { method: "DELETE", headers: { ...h, "if-match": etag } });
    expect(right.status).toBe(204);
    expect((await fetch(`${base}/v1/state/once/k`, { headers: h })).status).toBe(404);
  });

  it("POST /v1/state/:group applies a batch atomically; failed checks answer 412 and write nothing", async () => {
    const a = Number(((await put("acct/a", "100")).headers.get("etag") as string).slice(1, -1));
    const post = (body: unknown) =>
      fetch(`${base}/v1/state/acct`, {
        method: "POST",
        headers: { ...h, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const ops = [
      { op: "set", key: "a", value: "90" },
      { op: "set", key: "b", value: "10", ttl: 60_000 },
      { op: "delete", key: "gone" },
    ];
    const refused = await post({
      ops,
      checks: [
        { key: "a", version: a + 1000 },
        { key: "b", version: null },
      ],
    });
    expect(refused.status).toBe(412);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/a: expected/);
    expect(await (await fetch(`${base}/v1/state/acct/a`, { headers: h })).text()).toBe("100");
    const ok = await post({
      ops,
      checks: [
        { key: "a", version: a },
        { key: "b", version: null },
      ],
    });
    expect(ok.status).toBe(200);
    const result = (await ok.json()) as { version: number; versions: (number | null)[] };
    expect(result.versions).toEqual([a + 1, a + 2, null]);
    expect(result.version).toBe(a + 2);
    const listing = (await (await fetch(`${base}/v1/state/acct`, { headers: h })).json()) as {
      items: { key: string; value: string }[];
    };
    expect(listing.items.map((i) => `${i.key}=${i.value}`)).toEqual(["a=90", "b=10"]);
    for (const bad of ["not json", "{}", JSON.stringify({ ops: [{ op: "upsert", key: "a" }] })]) {
      const res = await fetch(`${base}/v1/state/acct`, {
        method: "POST",
        headers: { ...h, "content-type": "application/json" },
        body: bad,
      });
      expect(res.status, bad).toBe(400);
    }
  });

  it("POST /v1/state applies a batch across groups atomically; a failed check anywhere writes nothing", async () => {
    const from = Number(((await put("ledger-a/balance", "100")).headers.get("etag") as string).slice(1, -1));
    const post = (body: unknown) =>
      fetch(`${base}/v1/state`, {
        method: "POST",
        headers: { ...h, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const ops = [
      { op: "set", group: "ledger-a", key: "balance", value: "70" },
      { op: "set", group: "ledger-b", key: "balance", value: "30" },
      { op: "set", group: "transfers", key: "t1", value: "a->b 30" },
    ];
    // The transfer must not exist yet: checked with a wrong version first, then as absent.
    const transfer = (t1: number | null) =>
      post({
        ops,
        checks: [
          { group: "ledger-a", key: "balance", version: from },
          { group: "transfers", key: "t1", version: t1 },
        ],
      });
    const refused = await transfer(from);
    expect(refused.status).toBe(412);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/transfers\/t1: expected/);
    for (const group of ["ledger-b", "transfers"]) {
      const listing = (await (await fetch(`${base}/v1/state/${group}`, { headers: h })).json()) as { total: number };
      expect(listing.total, group).toBe(0);
    }
    const ok = await transfer(null);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ version: from + 3, versions: [from + 1, from + 2, from + 3] });
    expect(await (await fetch(`${base}/v1/state/ledger-b/balance`, { headers: h })).text()).toBe("30");
    for (const bad of [
      { ops: [{ op: "set", key: "k", value: "v" }] },
      { ops, checks: [{ key: "k", version: null }] },
    ]) {
      const res = await post(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
  });

  it("DELETE /v1/state/:group removes the whole group and reports how many keys went", async () => {
    await put("doomed/a", "1");
    await put("doomed/b", "2");
    const res = await fetch(`${base}/v1/state/doomed`, { method: "DELETE", headers: h });
    expect(await res.json()).toEqual({ group: "doomed", deleted: 2 });
    expect(((await (await fetch(`${base}/v1/state/doomed`, { headers: h })).json()) as { total: number }).total).toBe(
      0,
    );
  });

  it("a group or key named events stays reachable by asking for JSON or text", async () => {
    await put("events/k", "in a group called events");
    await put("g/events", "a key called events");
    const group = await fetch(`${base}/v1/state/events`, { headers: { ...h, accept: "application/json" } });
    expect(((await group.json()) as { items: { key: string }[] }).items.map((i) => i.key)).toEqual(["k"]);
    const key = await fetch(`${base}/v1/state/g/events`, { headers: { ...h, accept: "text/plain" } });
    expect(await key.text()).toBe("a key called events");
  });

  it("concurrent read-modify-write increments over HTTP with If-Match retries lose no update (fast-check)", async () => {
    let retries = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 1, max: 4 }), async (clients, each) => {
        const path = `counters/n-${Math.random().toString(36).slice(2)}`;
        const increment = async () => {
          for (;;) {
            const got = await fetch(`${base}/v1/state/${path}`, { headers: h });
            const etag = got.headers.get("etag");
            const value = got.status === 404 ? 0 : Number(await got.text());
            const condition: Record<string, string> = etag === null ? { "if-none-match": "*" } : { "if-match": etag };
            const res = await put(path, String(value + 1), condition);
            if (res.status === 204) return;
            expect(res.status).toBe(412);
            retries++;
          }
        };
        await Promise.all(
          Array.from({ length: clients }, async () => {
            for (let i = 0; i < each; i++) await increment();
          }),
        );
        const final = await fetch(`${base}/v1/state/${path}`, { headers: h });
        expect(await final.text()).toBe(String(clients * each));
      }),
      { numRuns: 10 },
    );
    // The clients really interleaved: some writes were refused and retried.
    expect(retries).toBeGreaterThan(0);
  });
});
