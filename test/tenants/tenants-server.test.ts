import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantKey, tenantHistory } from "../../src/tenants/index.js";
import { auth, startServer, tokens } from "../server/server-fixture.js";
import { useTempDir } from "../support/temp-dir.js";
import { objectKeys } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

describe("storeroom serve with replicated tenants (in process)", () => {
  const root = useTempDir("storeroom-tenants-server-");

  it("never uploads a tenant that was only read; a sync write answers once published, counted in /metrics", async () => {
    const objects = new MemoryObjectStore();
    const server = await startServer(join(root, "one"), { objects, tenants: { durability: "sync" } });
    const read = await server.app.inject({ url: "/v1/state/prefs/theme", headers: auth(tokens.ada) });
    expect(read.statusCode).toBe(404);
    expect((await server.app.inject({ url: "/v1/state/prefs", headers: auth(tokens.ada) })).statusCode).toBe(200);
    await server.tenants.evict(ada);
    expect(await objectKeys(objects, "tenants/")).toEqual([]);

    const put = await server.app.inject({
      method: "PUT",
      url: "/v1/state/prefs/theme",
      headers: auth(tokens.ada),
      payload: "dark",
    });
    expect(put.statusCode).toBe(204);
    // Acknowledged means named by the manifest: a reader with nothing but object storage sees it.
    expect((await tenantHistory(objects, ada))?.txid).toBeGreaterThan(0);
    const metrics = (await server.app.inject({ url: "/metrics", headers: auth(tokens.operator) })).body;
    expect(metrics).toMatch(/storeroom_replication_segments_total [1-9]/);
    expect(metrics).toMatch(/storeroom_replication_lag_seconds_count\{durability="sync"\} [1-9]/);
    expect(metrics).toContain('storeroom_replication_lag_bytes{durability="sync"} 0');
    expect(metrics).toContain("storeroom_tenant_conflicts_total 0");
  });

  it("a server that lost the tenant to another answers 409 instead of acknowledging, then serves the winner's state; the inspector lists the conflict", async () => {
    const objects = new MemoryObjectStore();
    const a = await startServer(join(root, "a"), { objects, tenants: { durability: "sync" } });
    const b = await startServer(join(root, "b"), { objects, tenants: { durability: "sync" } });
    const put = (server: typeof a, key: string, value: string) =>
      server.app.inject({ method: "PUT", url: `/v1/state/prefs/${key}`, headers: auth(tokens.ada), payload: value });
    const get = async (server: typeof a, key: string) =>
      (await server.app.inject({ url: `/v1/state/prefs/${key}`, headers: auth(tokens.ada) })).body;
    expect((await put(a, "k0", "from a")).statusCode).toBe(204);
    expect(await get(b, "k0")).toBe("from a"); // b hydrates the tenant
    expect((await put(a, "k1", "from a")).statusCode).toBe(204); // a publishes again: b's copy is stale
    const refused = await put(b, "k2", "from b");
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error: { code: "CONFLICT" } });
    // The next request hydrates the winner's version and is acknowledged on top of it.
    expect((await put(b, "k2", "from b, again")).statusCode).toBe(204);
    expect(await get(b, "k1")).toBe("from a");
    const inspector = await b.app.inject({ url: "/v1/inspector", headers: auth(tokens.operator) });
    expect(inspector.json().conflicts).toMatchObject([
      { tenant: "acme/users/ada", reason: "fenced", unpublishedTransactions: 1 },
    ]);
    expect((await b.app.inject({ url: "/metrics", headers: auth(tokens.operator) })).body).toContain(
      "storeroom_tenant_conflicts_total 1",
    );
    // a is the one behind now; its next write is refused and then lands on b's state.
    expect((await put(a, "k3", "from a")).statusCode).toBe(409);
    expect((await put(a, "k3", "from a")).statusCode).toBe(204);
    expect(await get(a, "k2")).toBe("from b, again");
  });
});
