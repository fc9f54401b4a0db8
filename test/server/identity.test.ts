import { connect } from "node:net";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TenantKey } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const secret = "gateway-secret-0123456789-0123456789";
const gatewayHeaders = (extra: Record<string, string>) => ({ "x-storeroom-gateway-secret": secret, ...extra });

/** Sends raw header lines (repeats, control bytes and all) over a fresh socket; resolves with status and body. */
function rawGet(base: string, path: string, headerLines: string[]): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
    const head = [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...headerLines, "", ""].join("\r\n");
    socket.end(Buffer.from(head, "latin1"));
  });
}

describe("gateway identity through a real server", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "gw"), { auth: "gateway", gatewaySecret: secret });
  const base = await server.listen();

  async function seedOrgState(): Promise<void> {
    const put = await fetch(`${base}/v1/state/org-only/plan`, {
      method: "PUT",
      headers: gatewayHeaders({ "x-org-id": "acme" }),
      body: "gold",
    });
    expect(put.status).toBe(204);
  }

  it("refuses a 300-byte X-User-Id with 400 instead of running as the org", async () => {
    await seedOrgState();
    const headers = gatewayHeaders({ "x-org-id": "acme", "x-user-id": "u".repeat(300) });
    const read = await fetch(`${base}/v1/state/org-only/plan`, { headers });
    expect(read.status).toBe(400);
    expect(((await read.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
    const write = await fetch(`${base}/v1/state/org-only/plan`, { method: "PUT", headers, body: "stolen" });
    expect(write.status).toBe(400);
    const after = await fetch(`${base}/v1/state/org-only/plan`, { headers: gatewayHeaders({ "x-org-id": "acme" }) });
    expect(await after.text()).toBe("gold");
  });

  it("refuses an X-User-Id holding a tab with 400 instead of running as the org", async () => {
    await seedOrgState();
    const headers = gatewayHeaders({ "x-org-id": "acme", "x-user-id": "ada\tx" });
    const write = await fetch(`${base}/v1/state/org-only/plan`, { method: "PUT", headers, body: "stolen" });
    expect(write.status).toBe(400);
    expect(((await write.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
    const after = await fetch(`${base}/v1/state/org-only/plan`, { headers: gatewayHeaders({ "x-org-id": "acme" }) });
    expect(await after.text()).toBe("gold");
  });

  it("refuses an org id named like an upload prefix, so its database could never sit under pub/", async () => {
    for (const org of ["pub", "priv", "quarantine"]) {
      const res = await fetch(`${base}/v1/state/g/k`, {
        method: "PUT",
        headers: gatewayHeaders({ "x-org-id": org }),
        body: "x",
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
    }
  });

  it("keeps an acme admin out of beta's tenants and inspector data; operator only when configured", async () => {
    await fetch(`${base}/v1/state/secret-group/beta-key`, {
      method: "PUT",
      headers: gatewayHeaders({ "x-org-id": "beta" }),
      body: "x",
    });
    await seedOrgState();
    for (const org of ["acme", "beta"]) await server.tenants.checkpoint(TenantKey.org(org));
    const acmeAdmin = gatewayHeaders({ "x-org-id": "acme", "x-roles": "admin" });
    const cross = await fetch(`${base}/v1/tenants?org=beta`, { headers: acmeAdmin });
    expect(cross.status).toBe(403);
    expect(((await cross.json()) as { error: { code: string } }).error.code).toBe("ACCESS_DENIED");
    const own = (await (await fetch(`${base}/v1/tenants`, { headers: acmeAdmin })).json()) as {
      tenants: { orgId: string }[];
    };
    expect(own.tenants.length).toBeGreaterThan(0);
    expect(own.tenants.every((t) => t.orgId === "acme")).toBe(true);
    const inspector = await (await fetch(`${base}/v1/inspector`, { headers: acmeAdmin })).text();
    expect(inspector).not.toMatch(/beta|secret-group/);
    const operator = await fetch(`${base}/v1/tenants`, {
      headers: gatewayHeaders({ "x-org-id": "ops", "x-roles": "operator" }),
    });
    expect(operator.status).toBe(403);
  });

  it("never yields an identity other than the one sent (property over raw header values)", async () => {
    const slug = fc.stringMatching(/^[a-z0-9_-]{1,12}$/);
    const value = fc.oneof(
      slug,
      fc.stringMatching(/^[a-z0-9_-]{129,300}$/),
      fc
        .tuple(slug, fc.constantFrom("\t", " ", "\u0000", "\u0001", "\u001f", "\u007f", ","), slug)
        .map((p) => p.join("")),
      fc.stringMatching(/^[!-~]{1,20}$/),
    );
    const header = fc.oneof(
      { weight: 2, arbitrary: fc.constant<string[]>([]) },
      { weight: 4, arbitrary: value.map((v) => [v]) },
      { weight: 1, arbitrary: fc.tuple(value, value).map(([a, b]) => [a, b]) },
    );
    const roleList = fc.oneof(
      fc.constant<string[]>([]),
      fc.array(fc.constantFrom("admin", "viewer", "ops-1"), { minLength: 1, maxLength: 3 }).map((r) => [r.join(",")]),
      value.map((v) => [v]),
    );
    const isSlug = (v: string) => /^[a-z0-9_-]{1,128}$/.test(v);
    await fc.assert(
      fc.asyncProperty(header, header, roleList, async (org, user, roles) => {
        const lines = [
          `X-Storeroom-Gateway-Secret: ${secret}`,
          ...org.map((v) => `X-Org-Id: ${v}`),
          ...user.map((v) => `X-User-Id: ${v}`),
          ...roles.map((v) => `X-Roles: ${v}`),
        ];
        const res = await rawGet(base, "/v1/whoami", lines);
        const roleNames = roles.length === 1 ? (roles[0] as string).split(",") : [];
        const valid =
          org.length === 1 &&
          isSlug(org[0] as string) &&
          user.length <= 1 &&
          (user.length === 0 || isSlug(user[0] as string)) &&
          roles.length <= 1 &&
          roleNames.every((r) => /^[a-z0-9_-]{1,64}$/.test(r));
        if (!valid) {
          expect(res.status, lines.join(" | ")).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          return;
        }
        expect(res.status, lines.join(" | ")).toBe(200);
        const expected = {
          orgId: org[0],
          ...(user.length === 1 ? { userId: user[0] } : {}),
          roles: [...new Set(roleNames)],
        };
        expect(JSON.parse(res.body)).toEqual({ identity: expected });
      }),
      { numRuns: 150 },
    );
  });
});

describe("token identity through a real server", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "tok"));
  const base = await server.listen();

  it("keeps an org admin's token inside its org (tenants and inspector)", async () => {
    await fetch(`${base}/v1/state/hidden-group/globex-key`, { method: "PUT", headers: auth(tokens.globex), body: "x" });
    await fetch(`${base}/v1/state/g/k`, { method: "PUT", headers: auth(tokens.acme), body: "x" });
    for (const org of ["acme", "globex"]) await server.tenants.checkpoint(TenantKey.org(org));
    const cross = await fetch(`${base}/v1/tenants?org=globex`, { headers: auth(tokens.acmeAdmin) });
    expect(cross.status).toBe(403);
    const own = (await (await fetch(`${base}/v1/tenants`, { headers: auth(tokens.acmeAdmin) })).json()) as {
      tenants: { orgId: string }[];
    };
    expect(own.tenants.map((t) => t.orgId)).toContain("acme");
    expect(own.tenants.every((t) => t.orgId === "acme")).toBe(true);
    const inspector = await (await fetch(`${base}/v1/inspector`, { headers: auth(tokens.acmeAdmin) })).text();
    expect(inspector).toMatch(/acme/);
    expect(inspector).not.toMatch(/globex|hidden-group/);
    const all = (await (await fetch(`${base}/v1/tenants?org=globex`, { headers: auth(tokens.operator) })).json()) as {
      tenants: { orgId: string }[];
    };
    expect(all.tenants.map((t) => t.orgId)).toEqual(["globex"]);
  });

  it("answers 401 to a presented but unknown token, even on routes open to anonymous callers", async () => {
    const res = await fetch(`${base}/v1/files/pub/2024/01/01/none.txt`, { headers: auth("not-a-token-not-a-token") });
    expect(res.status).toBe(401);
    expect((await fetch(`${base}/v1/files/pub/2024/01/01/none.txt`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { headers: auth("not-a-token-not-a-token") })).status).toBe(200);
  });
});
