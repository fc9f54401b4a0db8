import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { TenantKey } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

describe("background state purge", async () => {
  const dir = useTempDir();
  const clock = new ManualClock(Date.now());
  const server = await startServer(dir, { clock, intervals: { purgeMs: 20 } });
  const rows = () =>
    server.tenants.withTenant(
      TenantKey.org("acme"),
      async (db) => (await db.get<{ n: number }>("SELECT count(*) AS n FROM entries"))?.n,
    );

  it("physically removes expired entries of recently used tenants", async () => {
    const put = (path: string) =>
      server.app.inject({ method: "PUT", url: path, headers: auth(tokens.acme), payload: "v" });
    expect((await put("/v1/state/s/short?ttl=1000")).statusCode).toBe(204);
    expect((await put("/v1/state/s/keep")).statusCode).toBe(204);
    expect(await rows()).toBe(2);
    clock.advance(5000);
    // Invisible at once, before any purge.
    expect((await server.app.inject({ url: "/v1/state/s", headers: auth(tokens.acme) })).json().total).toBe(1);
    const deadline = Date.now() + 5000;
    while ((await rows()) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await rows()).toBe(1);
    expect((await server.app.inject({ url: "/v1/state/s/keep", headers: auth(tokens.acme) })).body).toBe("v");
  });
});
