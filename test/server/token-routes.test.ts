import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

interface Created {
  token: string;
  id: string;
  orgId: string;
  userId?: string;
  roles: string[];
  expiresAt?: string;
}

describe("token routes", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "tok"));
  const base = await server.listen();
  const json = (token: string) => ({ ...auth(token), "content-type": "application/json" });
  const create = (token: string, body: unknown) =>
    fetch(`${base}/v1/tokens`, { method: "POST", headers: json(token), body: JSON.stringify(body) });

  it("migrated the fixture's clear-text file on start", () => {
    const text = readFileSync(join(dir, "tok", "tokens.json"), "utf8");
    expect(text).not.toContain(tokens.acme);
    expect(server.tokens?.migrated).toBeGreaterThan(0);
  });

  it("lets an org admin create a token in its org, shown once, that works at once", async () => {
    const res = await create(tokens.acmeAdmin, { userId: "eve", roles: ["admin"], expiresIn: "30d", label: "eve" });
    expect(res.status).toBe(201);
    const made = (await res.json()) as Created;
    expect(made).toMatchObject({ orgId: "acme", userId: "eve", roles: ["admin"], label: "eve" });
    expect(Date.parse(made.expiresAt as string)).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    const who = await fetch(`${base}/v1/whoami`, { headers: auth(made.token) });
    expect(await who.json()).toEqual({ identity: { orgId: "acme", userId: "eve", roles: ["admin"] } });
    const listed = await (await fetch(`${base}/v1/tokens`, { headers: auth(tokens.acmeAdmin) })).text();
    expect(listed).toContain(made.id);
    expect(listed).not.toContain(made.token);
    expect(listed).not.toMatch(/sha256/);
    expect(JSON.parse(listed).tokens.every((t: { orgId: string }) => t.orgId === "acme")).toBe(true);
  });

  it("keeps an org admin out of other orgs and away from the operator role", async () => {
    expect((await create(tokens.acmeAdmin, { orgId: "globex" })).status).toBe(403);
    expect((await create(tokens.acmeAdmin, { roles: ["operator"] })).status).toBe(403);
    expect((await fetch(`${base}/v1/tokens?org=globex`, { headers: auth(tokens.acmeAdmin) })).status).toBe(403);
    expect((await create(tokens.acme, {})).status).toBe(403);
    const globex = (await (await create(tokens.operator, { orgId: "globex" })).json()) as Created;
    const cross = await fetch(`${base}/v1/tokens/${globex.id}`, { method: "DELETE", headers: auth(tokens.acmeAdmin) });
    expect(cross.status).toBe(404);
    expect((await fetch(`${base}/v1/whoami`, { headers: auth(globex.token) })).status).toBe(200);
    const bad = await create(tokens.operator, { orgId: "globex", roles: ["x"], colour: "red" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("INVALID_ARGUMENT");
  });

  it("reads ?org= on every admin route like every query parameter", async () => {
    const paths = [
      "/v1/tokens",
      "/v1/tenants",
      "/v1/bus/peers",
      "/v1/bus/messages",
      "/v1/bus/names",
      "/v1/delete-queue",
      "/v1/files",
      "/v1/uploads",
    ];
    for (const path of paths) {
      for (const token of [tokens.operator, tokens.acmeAdmin]) {
        const twice = await fetch(`${base}${path}?org=acme&org=acme`, { headers: auth(token) });
        expect([path, twice.status, await twice.json()]).toEqual([
          path,
          400,
          { error: { code: "INVALID_ARGUMENT", message: "org must be given once" } },
        ]);
        const empty = await fetch(`${base}${path}?org=`, { headers: auth(token) });
        expect([path, empty.status, await empty.json()]).toEqual([
          path,
          400,
          { error: { code: "INVALID_ARGUMENT", message: "org must not be empty" } },
        ]);
      }
      // A malformed or reserved org id is bad input for every caller, before any role check.
      for (const token of [tokens.operator, tokens.acmeAdmin]) {
        for (const org of ["Not%20An%20Org", "pub"]) {
          const bad = await fetch(`${base}${path}?org=${org}`, { headers: auth(token) });
          expect([path, org, bad.status]).toEqual([path, org, 400]);
          expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
        }
      }
      const own = await fetch(`${base}${path}?org=acme`, { headers: auth(tokens.acmeAdmin) });
      expect([path, own.status]).toEqual([path, 200]);
    }
  });

  it("marks the token a listing is made with as current, for a token from a plain tokens file too", async () => {
    const list = async (token: string) =>
      (
        (await (await fetch(`${base}/v1/tokens`, { headers: auth(token) })).json()) as {
          tokens: (Created & { current?: boolean })[];
        }
      ).tokens;
    const plain = (await list(tokens.acmeAdmin)).filter((t) => t.current === true);
    expect(plain).toHaveLength(1);
    expect(plain[0]).toMatchObject({ orgId: "acme", roles: ["admin"] });
    expect(plain[0]).not.toHaveProperty("userId");
    const made = (await (await create(tokens.acmeAdmin, { roles: ["admin"], label: "made" })).json()) as Created;
    const mine = (await list(made.token)).filter((t) => t.current === true);
    expect(mine.map((t) => t.id)).toEqual([made.id]);
    // An operator listing another org sees no current token there.
    const other = await fetch(`${base}/v1/tokens?org=globex`, { headers: auth(tokens.operator) });
    expect(JSON.stringify(await other.json())).not.toContain('"current"');
  });

  it("revokes: the token answers 401 from the next request on", async () => {
    const made = (await (await create(tokens.acmeAdmin, {})).json()) as Created;
    expect((await fetch(`${base}/v1/whoami`, { headers: auth(made.token) })).status).toBe(200);
    const del = await fetch(`${base}/v1/tokens/${made.id}`, { method: "DELETE", headers: auth(tokens.acmeAdmin) });
    expect(del.status).toBe(204);
    expect((await fetch(`${base}/v1/whoami`, { headers: auth(made.token) })).status).toBe(401);
    expect(
      (await fetch(`${base}/v1/tokens/${made.id}`, { method: "DELETE", headers: auth(tokens.operator) })).status,
    ).toBe(404);
  });
});

describe("token routes in gateway mode", async () => {
  const dir = useTempDir();
  const secret = "gateway-secret-0123456789-0123456789";
  const server = await startServer(join(dir, "gw"), { auth: "gateway", gatewaySecret: secret });
  const base = await server.listen();
  it("answer 501: the gateway owns identities", async () => {
    const res = await fetch(`${base}/v1/tokens`, {
      headers: { "x-storeroom-gateway-secret": secret, "x-org-id": "acme", "x-roles": "admin" },
    });
    expect(res.status).toBe(501);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNSUPPORTED");
  });
});
