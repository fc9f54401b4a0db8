import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { TenantKey } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

describe("state routes", async () => {
  const dir = useTempDir();
  // TTLs run on a clock the tests move, never on sleeps.
  const clock = new ManualClock(Date.now());
  const server = await startServer(dir, { clock });
  const app = server.app;

  it("puts, gets and deletes a value as raw text", async () => {
    const put = await app.inject({
      method: "PUT",
      url: "/v1/state/config/colour",
      headers: { ...auth(tokens.acme), "content-type": "text/plain" },
      payload: "blue",
    });
    expect(put.statusCode).toBe(204);
    const get = await app.inject({ url: "/v1/state/config/colour", headers: auth(tokens.acme) });
    expect(get.statusCode).toBe(200);
    expect(get.body).toBe("blue");
    expect(get.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(get.headers["x-content-type-options"]).toBe("nosniff");
    const json = await app.inject({
      method: "PUT",
      url: "/v1/state/config/obj",
      headers: { ...auth(tokens.acme), "content-type": "application/json" },
      payload: '{"a":1}',
    });
    expect(json.statusCode).toBe(204);
    expect((await app.inject({ url: "/v1/state/config/obj", headers: auth(tokens.acme) })).body).toBe('{"a":1}');
    expect(
      (await app.inject({ method: "DELETE", url: "/v1/state/config/colour", headers: auth(tokens.acme) })).statusCode,
    ).toBe(204);
    const gone = await app.inject({ url: "/v1/state/config/colour", headers: auth(tokens.acme) });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("NOT_FOUND");
    expect(
      (await app.inject({ method: "DELETE", url: "/v1/state/config/colour", headers: auth(tokens.acme) })).statusCode,
    ).toBe(204);
  });

  it("keeps org and user tenants and other orgs apart", async () => {
    await app.inject({ method: "PUT", url: "/v1/state/g/k", headers: auth(tokens.acme), payload: "org" });
    await app.inject({ method: "PUT", url: "/v1/state/g/k", headers: auth(tokens.ada), payload: "user" });
    expect((await app.inject({ url: "/v1/state/g/k", headers: auth(tokens.acme) })).body).toBe("org");
    expect((await app.inject({ url: "/v1/state/g/k", headers: auth(tokens.ada) })).body).toBe("user");
    expect((await app.inject({ url: "/v1/state/g/k", headers: auth(tokens.globex) })).statusCode).toBe(404);
    expect((await app.inject({ url: "/v1/state?prefix=", headers: auth(tokens.globex) })).json()).toMatchObject({
      prefix: "",
      total: 0,
      keys: 0,
      groups: [],
    });
  });

  it("pages a group in key order and lists groups by prefix", async () => {
    for (let i = 0; i < 25; i++) {
      await app.inject({
        method: "PUT",
        url: `/v1/state/items/k${String(i).padStart(2, "0")}`,
        headers: auth(tokens.globex),
        payload: `v${i}`,
      });
    }
    await app.inject({ method: "PUT", url: "/v1/state/itemz/x", headers: auth(tokens.globex), payload: "x" });
    await app.inject({ method: "PUT", url: "/v1/state/other/y", headers: auth(tokens.globex), payload: "y" });
    const page = (await app.inject({ url: "/v1/state/items?offset=20&limit=10", headers: auth(tokens.globex) })).json();
    expect(page).toMatchObject({ group: "items", offset: 20, limit: 10, total: 25 });
    expect(page.items.map((i: { key: string }) => i.key)).toEqual(["k20", "k21", "k22", "k23", "k24"]);
    expect(page.items[0]).toEqual({ key: "k20", value: "v20", version: expect.any(Number), expiresAt: null });
    const listing = (await app.inject({ url: "/v1/state?prefix=item", headers: auth(tokens.globex) })).json();
    expect(listing).toEqual({
      prefix: "item",
      offset: 0,
      limit: 100,
      total: 2,
      keys: 26,
      version: expect.any(Number),
      groups: [
        { group: "items", count: 25 },
        { group: "itemz", count: 1 },
      ],
    });
    const second = (
      await app.inject({ url: "/v1/state?prefix=item&offset=1&limit=1", headers: auth(tokens.globex) })
    ).json();
    expect(second.groups).toEqual([{ group: "itemz", count: 1 }]);
    const byKey = (await app.inject({ url: "/v1/state/items?prefix=k1&limit=3", headers: auth(tokens.globex) })).json();
    expect(byKey).toMatchObject({ prefix: "k1", total: 10, limit: 3 });
    expect(byKey.items.map((i: { key: string }) => i.key)).toEqual(["k10", "k11", "k12"]);
    for (const bad of ["offset=-1", "limit=0", "limit=1001", "offset=abc"]) {
      const res = await app.inject({ url: `/v1/state/items?${bad}`, headers: auth(tokens.globex) });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.code).toBe("INVALID_ARGUMENT");
    }
  });

  it("expires values written with ?ttl", async () => {
    const put = await app.inject({
      method: "PUT",
      url: "/v1/state/session/t?ttl=50",
      headers: auth(tokens.acme),
      payload: "abc",
    });
    expect(put.statusCode).toBe(204);
    expect((await app.inject({ url: "/v1/state/session/t", headers: auth(tokens.acme) })).body).toBe("abc");
    clock.advance(49);
    expect((await app.inject({ url: "/v1/state/session/t", headers: auth(tokens.acme) })).body).toBe("abc");
    clock.advance(1);
    expect((await app.inject({ url: "/v1/state/session/t", headers: auth(tokens.acme) })).statusCode).toBe(404);
    for (const bad of ["ttl=0", "ttl=-5", "ttl=1.5", "ttl=x"]) {
      const res = await app.inject({
        method: "PUT",
        url: `/v1/state/session/u?${bad}`,
        headers: auth(tokens.acme),
        payload: "v",
      });
      expect(res.statusCode, bad).toBe(400);
    }
    expect((await app.inject({ url: "/v1/state/session/u", headers: auth(tokens.acme) })).statusCode).toBe(404);
  });

  it("rejects oversize values, bad names and missing identity without changing anything", async () => {
    const big = await app.inject({
      method: "PUT",
      url: "/v1/state/g/big",
      headers: auth(tokens.acme),
      payload: Buffer.alloc(1024 * 1024 + 1, 97),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe("TOO_LARGE");
    const ctl = await app.inject({ method: "PUT", url: "/v1/state/g/a%01b", headers: auth(tokens.acme), payload: "x" });
    expect(ctl.statusCode).toBe(400);
    expect(ctl.json().error.code).toBe("INVALID_KEY");
    const anon = await app.inject({ method: "PUT", url: "/v1/state/g/anon", payload: "x" });
    expect(anon.statusCode).toBe(401);
    const badUtf8 = await app.inject({
      method: "PUT",
      url: "/v1/state/g/bin",
      headers: auth(tokens.acme),
      payload: Buffer.from([0xff, 0xfe]),
    });
    expect(badUtf8.statusCode).toBe(400);
    const listing = (await app.inject({ url: "/v1/state/g", headers: auth(tokens.acme) })).json();
    expect(listing.items.map((i: { key: string }) => i.key)).toEqual(["k"]);
  });

  it("lets admins list tenants and nobody else", async () => {
    await server.tenants.evict(TenantKey.org("acme"));
    const denied = await app.inject({ url: "/v1/tenants", headers: auth(tokens.acme) });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe("ACCESS_DENIED");
    const ok = await app.inject({ url: "/v1/tenants", headers: auth(tokens.operator) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().tenants).toContainEqual(
      expect.objectContaining({ tenant: TenantKey.org("acme").toString(), orgId: "acme", scope: "org" }),
    );
    expect((await app.inject({ url: "/v1/state/g/k", headers: auth(tokens.acme) })).body).toBe("org");
  });
});
