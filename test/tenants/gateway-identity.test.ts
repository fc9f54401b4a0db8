import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, InvalidKeyError } from "../../src/errors.js";
import {
  currentGatewayIdentity,
  gatewayTrustCheck,
  readGatewayIdentity,
  requireGateway,
  runWithGatewayIdentity,
  stripGatewayHeaders,
  tenantKeyFromIdentity,
} from "../../src/tenants/index.js";

function send(port: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: "/", headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const secret = "g".repeat(40);
const trust = { secret };

describe("gateway identity headers", () => {
  it("reads org, user and roles exactly as sent", () => {
    const id = readGatewayIdentity({ "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin, viewer" });
    expect(id).toEqual({ orgId: "acme", userId: "ada", roles: ["admin", "viewer"] });
    expect(readGatewayIdentity({})).toEqual({ orgId: undefined, userId: undefined, roles: [] });
    expect(readGatewayIdentity({ "x-org-id": "a".repeat(128) }).orgId).toHaveLength(128);
  });

  it("refuses a present but invalid header instead of treating it as absent", () => {
    const bad: IncomingHttpHeaders[] = [
      { "x-org-id": "acme", "x-user-id": "a".repeat(300) },
      { "x-org-id": "acme", "x-user-id": "ada\tx" },
      { "x-org-id": "acme", "x-user-id": "ada\u0001" },
      { "x-org-id": "acme", "x-user-id": "" },
      { "x-org-id": "acme", "x-user-id": "ada, bob" },
      { "x-org-id": "a".repeat(129) },
      { "x-org-id": "ACME" },
      { "x-user-id": "ada" },
      { "x-org-id": "acme", "x-roles": "admin,,viewer" },
      { "x-org-id": "acme", "x-roles": "x\u007f" },
    ];
    for (const headers of bad)
      expect(() => readGatewayIdentity(headers), JSON.stringify(headers)).toThrow(InvalidKeyError);
  });

  it("strips identity headers and the secret and keeps the rest", () => {
    const headers: IncomingHttpHeaders = {
      "x-org-id": "acme",
      "x-user-id": "ada",
      "x-roles": "admin",
      "x-storeroom-gateway-secret": secret,
      host: "h",
    };
    stripGatewayHeaders(headers);
    expect(headers).toEqual({ host: "h" });
  });

  it("binds the identity for everything awaited inside and derives user and org tenant keys", async () => {
    expect(currentGatewayIdentity()).toBeUndefined();
    const identity = readGatewayIdentity({ "x-org-id": "acme", "x-user-id": "ada" });
    const keys = await runWithGatewayIdentity(identity, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return [tenantKeyFromIdentity().toString(), tenantKeyFromIdentity(undefined, "org").toString()];
    });
    expect(keys).toEqual(["acme/users/ada", "acme/org"]);
    expect(() => tenantKeyFromIdentity()).toThrow(InvalidKeyError);
    const orgOnly = readGatewayIdentity({ "x-org-id": "acme" });
    expect(() => tenantKeyFromIdentity(orgOnly, "user")).toThrow(InvalidKeyError);
    expect(tenantKeyFromIdentity(orgOnly, "org").objectKey()).toBe("acme/org.db");
  });

  it("has no implicit trust: a missing trust or a short secret is refused", () => {
    expect(() => gatewayTrustCheck(undefined)).toThrow(InvalidArgumentError);
    expect(() => gatewayTrustCheck({ secret: "short" })).toThrow(/32 bytes/);
  });
});

describe("requireGateway over real sockets", () => {
  const plain = createServer((req, res) =>
    requireGateway(
      req,
      res,
      () => {
        res.end(JSON.stringify(currentGatewayIdentity()));
      },
      { trust },
    ),
  );
  const custom = createServer((req, res) =>
    requireGateway(req, res, () => res.end("never"), { trust: () => false, scope: "org" }),
  );
  const fastify = Fastify();
  fastify.addHook("onRequest", (request, reply, done) => {
    requireGateway(request.raw, reply.raw, done, { trust, scope: "org" });
  });
  fastify.get("/", async () => ({ tenant: tenantKeyFromIdentity(undefined, "org").toString() }));

  afterAll(async () => {
    plain.close();
    custom.close();
    await fastify.close();
  });

  async function listen(server: ReturnType<typeof createServer>): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
  }

  it("refuses loopback peers without the secret, bad identities and missing users; binds a good one", async () => {
    const port = await listen(plain);
    const loopbackNoSecret = await send(port, { "x-org-id": "acme", "x-user-id": "ada" });
    expect(loopbackNoSecret.status).toBe(401);
    expect(JSON.parse(loopbackNoSecret.body).error.code).toBe("UNAUTHENTICATED");
    const secretHeader = { "x-storeroom-gateway-secret": secret };
    const missing = await send(port, { ...secretHeader, "x-org-id": "acme" });
    expect(missing.status).toBe(401);
    const tab = await send(port, { ...secretHeader, "x-org-id": "acme", "x-user-id": "ada\tx" });
    expect(tab.status).toBe(400);
    expect(JSON.parse(tab.body).error.code).toBe("INVALID_KEY");
    const ok = await send(port, { ...secretHeader, "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin" });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ orgId: "acme", userId: "ada", roles: ["admin"] });
  });

  it("uses a trust function as given", async () => {
    const port = await listen(custom);
    const res = await send(port, { "x-org-id": "acme", "x-user-id": "ada", "x-storeroom-gateway-secret": secret });
    expect(res.status).toBe(401);
  });

  it("works as a Fastify onRequest hook", async () => {
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    const port = (fastify.server.address() as AddressInfo).port;
    const ok = await send(port, { "x-org-id": "acme", "x-storeroom-gateway-secret": secret });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ tenant: "acme/org" });
    expect((await send(port, { "x-org-id": "acme" })).status).toBe(401);
  });
});
