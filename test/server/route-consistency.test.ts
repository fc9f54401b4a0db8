import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

type ErrorBody = { error: { code: string; message: string } };

describe("the same rule on every route, through a real server", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "consistency"));
  const base = await server.listen();
  const json = (token: string) => ({ ...auth(token), "content-type": "application/json" });

  it("answers a bad paging or numeric query parameter on every route with 400 INVALID_ARGUMENT in one wording", async () => {
    const cases: [string, RequestInit, string][] = [
      ["/v1/state?limit=0", {}, 'limit must be an integer in 1..1000, got "0"'],
      ["/v1/state/g?limit=1001", {}, 'limit must be an integer in 1..1000, got "1001"'],
      ["/v1/state/g?offset=-1", {}, 'offset must be a non-negative integer, got "-1"'],
      ["/v1/state?offset=1.5", {}, 'offset must be a non-negative integer, got "1.5"'],
      ["/v1/uploads?limit=0", {}, 'limit must be an integer in 1..1000, got "0"'],
      ["/v1/uploads?limit=abc", {}, 'limit must be an integer in 1..1000, got "abc"'],
      ["/v1/files?limit=0", {}, 'limit must be an integer in 1..1000, got "0"'],
      ["/v1/files?limit=", {}, 'limit must be an integer in 1..1000, got ""'],
      ["/v1/files?limit=1&limit=2", {}, "limit must be given once"],
      ["/v1/state/g/k?ttl=0", { method: "PUT", body: "v" }, 'ttl must be a positive integer, got "0"'],
      ["/v1/state/g/k?ttl=1e3", { method: "PUT", body: "v" }, 'ttl must be a positive integer, got "1e3"'],
      ["/v1/state/g/events?lastEventId=x", {}, 'lastEventId must be a non-negative integer, got "x"'],
      ["/v1/state/events?lastEventId=-1", {}, 'lastEventId must be a non-negative integer, got "-1"'],
      ["/v1/events?lastEventId=x", {}, 'lastEventId must be a non-negative integer, got "x"'],
      [
        "/v1/events",
        { headers: { "last-event-id": "abc" } },
        'Last-Event-ID must be a non-negative integer, got "abc"',
      ],
      [
        "/v1/state/g/events",
        { headers: { "last-event-id": "abc" } },
        'Last-Event-ID must be a non-negative integer, got "abc"',
      ],
      ["/v1/state?prefix=%01", {}, "prefix must be at most 512 bytes without control characters"],
      ["/v1/uploads?prefix=%01", {}, "prefix must be at most 1024 bytes without control characters"],
      ["/v1/files?cursor=%7F", {}, "cursor must be at most 1024 bytes without control characters"],
      [`/v1/uploads?cursor=${"k".repeat(1025)}`, {}, "cursor must be at most 1024 bytes without control characters"],
    ];
    for (const [path, init, message] of cases) {
      const res = await fetch(`${base}${path}`, { ...init, headers: { ...auth(tokens.ada), ...init.headers } });
      expect(res.status, path).toBe(400);
      expect(await res.json(), path).toEqual({ error: { code: "INVALID_ARGUMENT", message } });
    }
    const tail = await fetch(`${base}/v1/bus/messages?limit=201`, { headers: auth(tokens.acmeAdmin) });
    expect(await tail.json()).toEqual({
      error: { code: "INVALID_ARGUMENT", message: 'limit must be an integer in 1..200, got "201"' },
    });
    // The same parameters within range still work, and an empty Last-Event-ID means "from now".
    expect((await fetch(`${base}/v1/files?limit=1000`, { headers: auth(tokens.ada) })).status).toBe(200);
    expect((await fetch(`${base}/v1/state?offset=0&limit=1`, { headers: auth(tokens.ada) })).status).toBe(200);
    const stream = await fetch(`${base}/v1/state/g/events`, { headers: { ...auth(tokens.ada), "last-event-id": "" } });
    expect(stream.status).toBe(200);
    await stream.body?.cancel();
  });

  it("reports a completed upload as complete, with its file's key, size and URL, and no parts list", async () => {
    const init = (await (
      await fetch(`${base}/v1/uploads`, {
        method: "POST",
        headers: json(tokens.bob),
        body: JSON.stringify({ filename: "done.txt", size: 3 }),
      })
    ).json()) as { claimId: string; key: string; partSize: number };
    const pending = await fetch(`${base}/v1/uploads/${init.claimId}`, { headers: auth(tokens.bob) });
    expect(await pending.json()).toMatchObject({ status: "pending", parts: [], expiresAt: expect.any(Number) });
    const part = await fetch(`${base}/v1/uploads/${init.claimId}/parts/1`, {
      method: "PUT",
      headers: auth(tokens.bob),
      body: "abc",
    });
    expect(part.status).toBe(200);
    const done = await fetch(`${base}/v1/uploads/${init.claimId}/complete`, {
      method: "POST",
      headers: auth(tokens.bob),
    });
    expect(done.status).toBe(200);
    const completed = {
      claimId: init.claimId,
      key: init.key,
      status: "uploaded",
      size: 3,
      partSize: init.partSize,
      partCount: 1,
    };
    const one = await fetch(`${base}/v1/uploads/${init.claimId}`, { headers: auth(tokens.bob) });
    expect(await one.json()).toEqual({ ...completed, url: `/v1/files/${init.key}` });
    const parts = await fetch(`${base}/v1/uploads/${init.claimId}/parts`, { headers: auth(tokens.bob) });
    expect(await parts.json()).toEqual(completed);
  });

  it("answers 415 in the error shape, naming the route, for a body declared as anything but JSON on every JSON route", async () => {
    const routes: [string, string, string, string][] = [
      ["POST", "/v1/state/g", "POST /v1/state/:group", JSON.stringify({ ops: [{ op: "set", key: "k", value: "v" }] })],
      [
        "POST",
        "/v1/state",
        "POST /v1/state",
        JSON.stringify({ ops: [{ op: "set", group: "g", key: "k", value: "v" }] }),
      ],
      ["POST", "/v1/uploads", "POST /v1/uploads", JSON.stringify({ filename: "a.txt", size: 3 })],
      ["POST", "/v1/tokens", "POST /v1/tokens", JSON.stringify({ label: "t" })],
      ["PUT", "/v1/bus/names/printer", "PUT /v1/bus/names/:name", JSON.stringify({ userId: "ada" })],
    ];
    for (const [method, path, route, body] of routes) {
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: { ...auth(tokens.acmeAdmin), "content-type": type },
          body,
        });
        expect(res.status, `${route} ${type}`).toBe(415);
        expect(((await res.json()) as ErrorBody).error, `${route} ${type}`).toEqual({
          code: "UNSUPPORTED_MEDIA_TYPE",
          message: `${route} accepts only a JSON body (Content-Type: application/json), got ${type}`,
        });
      }
      // A body without any Content-Type is not taken for JSON either.
      const bare = await fetch(`${base}${path}`, {
        method,
        headers: auth(tokens.acmeAdmin),
        body: new TextEncoder().encode(body),
      });
      expect(bare.status, `${route} without a type`).toBe(415);
      expect(((await bare.json()) as ErrorBody).error.message).toBe(
        `${route} accepts only a JSON body (Content-Type: application/json), got no Content-Type`,
      );
      const ok = await fetch(`${base}${path}`, {
        method,
        headers: { ...auth(tokens.acmeAdmin), "content-type": "application/json; charset=utf-8" },
        body,
      });
      expect(ok.status, route).toBeLessThan(300);
    }
    // The body of POST /v1/tokens is optional: none at all is fine.
    const empty = await fetch(`${base}/v1/tokens`, { method: "POST", headers: auth(tokens.acmeAdmin) });
    expect(empty.status).toBe(201);
  });

  it("answers the 415 Fastify raises itself (a route that takes no body) in the same shape and wording", async () => {
    const verify = await fetch(`${base}/v1/bus/audit/verify`, {
      method: "POST",
      headers: { ...auth(tokens.acmeAdmin), "content-type": "application/xml" },
      body: "<verify/>",
    });
    expect(verify.status).toBe(415);
    expect(await verify.json()).toEqual({
      error: {
        code: "UNSUPPORTED_MEDIA_TYPE",
        message:
          "POST /v1/bus/audit/verify accepts only a JSON body (Content-Type: application/json), got application/xml",
      },
    });
  });

  it("answers credentials of another scheme with 401 asking for a Bearer token", async () => {
    const message = async (authorization: string) => {
      const res = await fetch(`${base}/v1/whoami`, { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      const { error } = (await res.json()) as ErrorBody;
      expect(error.code).toBe("UNAUTHENTICATED");
      return error.message;
    };
    const required = "a Bearer token is required: send Authorization: Bearer <token>";
    expect(await message(`Basic ${Buffer.from("ada:secret").toString("base64")}`)).toBe(required);
    expect(await message(tokens.ada)).toBe(required);
    expect(await message("Bearer")).toBe(required);
    expect(await message("Bearer not-a-known-token")).toBe("unknown or expired bearer token");
    // The scheme is case-insensitive.
    const lower = await fetch(`${base}/v1/whoami`, { headers: { authorization: `bearer ${tokens.ada}` } });
    expect(lower.status).toBe(200);
  });

  it("challenges every 401 with WWW-Authenticate: Bearer, on HTTP routes and on the bus upgrade", async () => {
    const challenge = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}${path}`, { headers });
      expect(res.status, path).toBe(401);
      return res.headers.get("www-authenticate");
    };
    expect(await challenge("/v1/whoami")).toBe('Bearer realm="storeroom"');
    expect(await challenge("/v1/state/g/k")).toBe('Bearer realm="storeroom"');
    expect(await challenge("/v1/whoami", { authorization: "Bearer not-a-known-token" })).toBe(
      'Bearer realm="storeroom", error="invalid_token"',
    );
    expect(await challenge("/v1/files", { authorization: "Basic eDp5" })).toBe(
      'Bearer realm="storeroom", error="invalid_token"',
    );
    // Answers other than 401 carry no challenge.
    const denied = await fetch(`${base}/v1/tokens`, { headers: auth(tokens.ada) });
    expect(denied.status).toBe(403);
    expect(denied.headers.has("www-authenticate")).toBe(false);
    expect(await upgradeRefusal(`${base.replace("http", "ws")}/v1/bus`, {})).toEqual({
      status: 401,
      challenge: 'Bearer realm="storeroom"',
    });
    expect(await upgradeRefusal(`${base.replace("http", "ws")}/v1/bus`, { authorization: "Bearer nope" })).toEqual({
      status: 401,
      challenge: 'Bearer realm="storeroom", error="invalid_token"',
    });
  });
});

describe("401 in gateway mode, through a real server", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "gateway"), { auth: "gateway", gatewaySecret: "g".repeat(32) });
  const base = await server.listen();

  it("sends no WWW-Authenticate challenge: a client has no scheme to answer, the gateway proves itself", async () => {
    const res = await fetch(`${base}/v1/whoami`, { headers: { "x-storeroom-gateway-secret": "w".repeat(32) } });
    expect(res.status).toBe(401);
    expect(res.headers.has("www-authenticate")).toBe(false);
    const anonymous = await upgradeRefusal(`${base.replace("http", "ws")}/v1/bus`, {});
    expect(anonymous).toEqual({ status: 401, challenge: undefined });
  });
});

/** The status and WWW-Authenticate header of a refused WebSocket upgrade. */
function upgradeRefusal(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number | undefined; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("open", () => {
      ws.close();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      const header = res.headers["www-authenticate"];
      resolve({ status: res.statusCode, challenge: typeof header === "string" ? header : undefined });
      res.resume();
      ws.terminate();
    });
    ws.once("error", () => {});
  });
}
