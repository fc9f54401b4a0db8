import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidKeyError } from "../../src/errors.js";
import {
  currentGatewayIdentity,
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

describe("gateway identity headers", () => {
  it("reads org, user and roles and treats oversized or control-byte values as absent", () => {
    const id = readGatewayIdentity({ "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin, ,viewer" });
    expect(id).toEqual({ orgId: "acme", userId: "ada", roles: ["admin", "viewer"] });
    const bad = readGatewayIdentity({
      "x-org-id": "a".repeat(257),
      "x-user-id": "ada\u0001",
      "x-roles": "x\u007f",
    } as IncomingHttpHeaders);
    expect(bad).toEqual({ orgId: undefined, userId: undefined, roles: [] });
    expect(readGatewayIdentity({ "x-org-id": "a".repeat(256) }).orgId).toHaveLength(256);
  });

  it("strips identity headers and keeps the rest", () => {
    const headers: IncomingHttpHeaders = { "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin", host: "h" };
    stripGatewayHeaders(headers);
    expect(headers).toEqual({ host: "h" });
  });

  it("binds the identity for everything awaited inside and derives tenant keys (ForCtx / ForOrg)", async () => {
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
    expect(() => tenantKeyFromIdentity(readGatewayIdentity({ "x-org-id": "../etc", "x-user-id": "a" }))).toThrow(
      InvalidKeyError,
    );
  });
});

describe("requireGateway over real sockets", () => {
  const plain = createServer((req, res) =>
    requireGateway(req, res, () => {
      res.end(JSON.stringify(currentGatewayIdentity()));
    }),
  );
  const untrusting = createServer((req, res) =>
    requireGateway(req, res, () => res.end("never"), { trusted: () => false, scope: "org" }),
  );
  const fastify = Fastify();
  fastify.addHook("onRequest", (request, reply, done) => {
    requireGateway(request.raw, reply.raw, done, { scope: "org" });
  });
  fastify.get("/", async () => ({ tenant: tenantKeyFromIdentity(undefined, "org").toString() }));

  afterAll(async () => {
    plain.close();
    untrusting.close();
    await fastify.close();
  });

  async function listen(server: ReturnType<typeof createServer>): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
  }

  it("answers 503 without identity and binds it with identity (node:http)", async () => {
    const port = await listen(plain);
    const missing = await send(port, { "x-org-id": "acme" });
    expect(missing.status).toBe(503);
    expect(JSON.parse(missing.body).error.code).toBe("GATEWAY_REQUIRED");
    const ok = await send(port, { "x-org-id": "acme", "x-user-id": "ada", "x-roles": "admin" });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ orgId: "acme", userId: "ada", roles: ["admin"] });
  });

  it("strips headers from untrusted peers, so they get 503", async () => {
    const port = await listen(untrusting);
    const res = await send(port, { "x-org-id": "acme", "x-user-id": "ada" });
    expect(res.status).toBe(503);
  });

  it("works as a Fastify onRequest hook", async () => {
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    const port = (fastify.server.address() as AddressInfo).port;
    const ok = await send(port, { "x-org-id": "acme" });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ tenant: "acme/org" });
    expect((await send(port, {})).status).toBe(503);
  });
});
