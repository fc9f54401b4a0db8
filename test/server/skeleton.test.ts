import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  AccessDeniedError,
  ConflictError,
  InvalidKeyError,
  NotFoundError,
  QuotaExceededError,
  StoreError,
  UnauthenticatedError,
} from "../../src/errors.js";
import {
  createServer,
  errorReply,
  GatewayAuthenticator,
  resolveServerConfig,
  resolveServerOptions,
} from "../../src/server/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { TestPeer } from "./bus-peer.js";

const secret = "s".repeat(40);

describe("server config", () => {
  it("applies embedded defaults", () => {
    const c = resolveServerOptions({ dataDir: "/tmp/x" });
    expect(c).toMatchObject({
      host: "127.0.0.1",
      port: 7480,
      auth: "token",
      inspector: true,
      database: "/tmp/x/control.db",
    });
    expect(c.objects).toBe("file:///tmp/x/objects");
    expect(c.bus).toEqual({ ackedRetentionMs: 3_600_000, pruneIntervalMs: 60_000 });
    expect(resolveServerOptions({ bus: { ackedRetentionMs: Number.POSITIVE_INFINITY } }).bus.ackedRetentionMs).toBe(
      Number.POSITIVE_INFINITY,
    );
  });
  it("rejects bad values with INVALID_ARGUMENT", () => {
    expect(() => resolveServerOptions({ port: 70000 })).toThrow(/port/);
    expect(() => resolveServerOptions({ auth: "gateway" })).toThrow(/gateway secret/);
    expect(() => resolveServerOptions({ auth: "magic" as "token" })).toThrow(/auth/);
    expect(() => resolveServerOptions({ maxValueBytes: 0 })).toThrow(/maxValueBytes/);
    expect(() => resolveServerOptions({ intervals: { purgeMs: -1 } })).toThrow(/^intervals\.purgeMs must be/);
    expect(() => resolveServerOptions({ bus: { ackedRetentionMs: -1 } })).toThrow(/^bus\.ackedRetentionMs must be/);
    expect(() => resolveServerOptions({ bus: { ackedRetentionMs: Number.NaN } })).toThrow(/^bus\.ackedRetentionMs/);
    expect(() => resolveServerOptions({ bus: { pruneIntervalMs: 1.5 } })).toThrow(/^bus\.pruneIntervalMs must be/);
    expect(() => resolveServerOptions({ uploads: { maxPendingClaims: 0 } })).toThrow(
      /^uploads\.maxPendingClaims must be a positive integer/,
    );
  });
  it("the deprecated resolveServerConfig is resolveServerOptions", () => {
    expect(resolveServerConfig).toBe(resolveServerOptions);
  });
  it("an interval of 0 disables that background job; absent means the default", () => {
    const c = resolveServerOptions({ intervals: { sweepMs: 0 } });
    expect(c.intervals).toEqual({ sweepMs: 0, deleteMs: 300_000, purgeMs: 60_000 });
  });
});

describe("error mapping", () => {
  it("maps store error codes to statuses and hides unknown errors", () => {
    expect(errorReply(new NotFoundError("nope"))).toEqual({
      status: 404,
      body: { error: { code: "NOT_FOUND", message: "nope" } },
    });
    expect(errorReply(new ConflictError()).status).toBe(409);
    expect(errorReply(new QuotaExceededError("keys", 3)).status).toBe(409);
    expect(errorReply(new StoreError("CORRUPT_DATABASE", "/secret/path/x.db is bad"))).toEqual({
      status: 500,
      body: { error: { code: "INTERNAL", message: "internal error" } },
    });
    expect(errorReply(new Error("ECONNREFUSED 10.0.0.1")).body.error.message).toBe("internal error");
  });
});

describe("gateway mode", () => {
  const auth = new GatewayAuthenticator({ secret });
  it("trusts identity headers only with the shared secret, stripping them otherwise", () => {
    const forged: Record<string, string> = { "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin" };
    expect(auth.identify(forged)).toBeNull();
    expect(forged["x-org-id"]).toBeUndefined();
    expect(() => auth.identify({ "x-org-id": "acme", "x-storeroom-gateway-secret": `${secret}x` })).toThrow(
      UnauthenticatedError,
    );
    expect(
      auth.identify({
        "x-org-id": "acme",
        "x-user-id": "ada",
        "x-roles": "admin, ops",
        "x-storeroom-gateway-secret": secret,
      }),
    ).toEqual({
      orgId: "acme",
      userId: "ada",
      roles: ["admin", "ops"],
    });
  });
  it("refuses long or control-byte values instead of dropping them", () => {
    expect(() => auth.identify({ "x-org-id": "a".repeat(257), "x-storeroom-gateway-secret": secret })).toThrow(
      InvalidKeyError,
    );
    expect(() =>
      auth.identify({ "x-org-id": "acme", "x-user-id": "a\u0001", "x-storeroom-gateway-secret": secret }),
    ).toThrow(InvalidKeyError);
  });
  it("accepts the operator role only when configured", () => {
    const headers = () => ({ "x-org-id": "ops", "x-roles": "operator", "x-storeroom-gateway-secret": secret });
    expect(() => auth.identify(headers())).toThrow(AccessDeniedError);
    const trusting = new GatewayAuthenticator({ secret, operatorRole: true });
    expect(trusting.identify(headers())).toEqual({ orgId: "ops", roles: ["operator"] });
  });
  it("refuses a short secret", () => {
    expect(() => new GatewayAuthenticator({ secret: "short" })).toThrow(/32 bytes/);
  });
});

describe("http skeleton", async () => {
  const dir = useTempDir();
  const server = await createServer({ dataDir: dir, port: 0 });
  const token = server.tokens?.generated?.token ?? "";
  afterAll(async () => {
    expect((await server.close()).flushed).toBe(true);
  });

  it("answers /healthz anonymously and everything else only with identity", async () => {
    expect((await server.app.inject({ url: "/healthz" })).json()).toEqual({ status: "ok" });
    const anon = await server.app.inject({ url: "/v1/whoami" });
    expect(anon.statusCode).toBe(401);
    expect(anon.json()).toEqual({ error: { code: "UNAUTHENTICATED", message: "missing or invalid credentials" } });
    const forged = await server.app.inject({
      url: "/v1/whoami",
      headers: { "x-org-id": "acme", "x-storeroom-gateway-secret": secret },
    });
    expect(forged.statusCode).toBe(401);
    const ok = await server.app.inject({ url: "/v1/whoami", headers: { authorization: `Bearer ${token}` } });
    expect(ok.json()).toEqual({ identity: { orgId: "default", roles: ["operator"] } });
  });

  it("answers unknown routes with a JSON 404 and exposes request metrics", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const missing = await server.app.inject({ url: "/v1/nothing", headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe("NOT_FOUND");
    const metrics = await server.app.inject({ url: "/metrics", headers: auth });
    expect(metrics.headers["content-type"]).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/storeroom_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
    expect(metrics.body).toMatch(/storeroom_http_request_duration_seconds_bucket/);
    const depth = (body: string, queue: string) =>
      Number(body.match(new RegExp(`^storeroom_queue_depth\\{queue="${queue}"\\} (\\d+)$`, "m"))?.[1]);
    for (const queue of ["delete", "claims_pending", "outbox_pending", "bus_pending"]) {
      expect(depth(metrics.body, queue)).toBe(0);
    }

    // A pending upload claim and an undelivered bus message (its recipient is offline).
    const init = await server.app.inject({
      method: "POST",
      url: "/v1/uploads",
      headers: auth,
      payload: { filename: "a.bin", size: 3 },
    });
    expect(init.statusCode).toBe(201);
    const secret = readFileSync(join(dir, "bus-hmac.key"), "utf8").trim();
    const wsUrl = `${(await server.listen()).replace("http", "ws")}/v1/bus`;
    const carol = await TestPeer.connect(wsUrl, auth, "carol", secret);
    carol.close();
    const alice = await TestPeer.connect(wsUrl, auth, "alice", secret);
    alice.send("carol", { n: 1 }, "m1");
    let after = "";
    // The message is stored a moment after the send: wait for it (a slow machine may take seconds).
    const deadline = Date.now() + 10_000;
    while (depth(after, "bus_pending") !== 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      after = (await server.app.inject({ url: "/metrics", headers: auth })).body;
    }
    alice.close();
    expect(depth(after, "claims_pending")).toBe(1);
    expect(depth(after, "bus_pending")).toBe(1);
    expect(depth(after, "delete")).toBe(0);
    expect(depth(after, "outbox_pending")).toBe(0);
  });
});
