import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { createServer } from "../../src/server/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, tokens } from "./server-fixture.js";

function tokenFile(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens: [{ token: tokens.acme, orgId: "acme" }] }));
}

describe("graceful shutdown", () => {
  const root = useTempDir();

  it("finishes in-flight requests, checkpoints dirty tenants and reports flushed", async () => {
    const memory = new MemoryObjectStore();
    const dir = join(root, "ok");
    tokenFile(dir);
    const server = await createServer({ dataDir: dir, port: 0, objects: memory });
    const base = await server.listen();
    await fetch(`${base}/v1/state/g/warm`, { method: "PUT", headers: auth(tokens.acme), body: "w" });
    // Writes race the shutdown: each is either acknowledged (and then durable) or refused.
    const writes = Array.from({ length: 50 }, (_, i) =>
      fetch(`${base}/v1/state/g/k${i}`, { method: "PUT", headers: auth(tokens.acme), body: `v${i}` }).then(
        (r) => r.status,
        () => 0,
      ),
    );
    expect(await Promise.race(writes)).toBe(204);
    const report = await server.close();
    const statuses = await Promise.all(writes);
    expect(report).toEqual({ flushed: true, errors: [] });
    expect(statuses.every((s) => s === 204 || s === 503 || s === 0)).toBe(true);
    expect(statuses.filter((s) => s === 204).length).toBeGreaterThan(0);
    expect(await memory.head("tenants/acme/org/manifest.json")).not.toBeNull();
    expect(await server.close()).toBe(report);
    // A fresh server with an empty cache on the same store reads every acknowledged write.
    const again = await createServer({
      dataDir: join(root, "ok-2"),
      tokensFile: join(dir, "tokens.json"),
      port: 0,
      objects: memory,
    });
    for (const [i, status] of statuses.entries()) {
      if (status !== 204) continue;
      expect((await again.app.inject({ url: `/v1/state/g/k${i}`, headers: auth(tokens.acme) })).body).toBe(`v${i}`);
    }
    expect((await again.close()).flushed).toBe(true);
  });

  it("closes a connection that never sent a request once the grace period is over, instead of waiting for it", async () => {
    const dir = join(root, "silent");
    tokenFile(dir);
    const server = await createServer({
      dataDir: dir,
      port: 0,
      objects: new MemoryObjectStore(),
      shutdownGraceMs: 100,
    });
    const base = new URL(await server.listen());
    // What a load balancer's pre-opened connection looks like: connected, nothing sent.
    const silent = connect(Number(base.port), base.hostname);
    await new Promise((resolve) => silent.once("connect", resolve));
    const closedBy = new Promise((resolve) => silent.once("close", resolve));
    const report = server.close();
    await closedBy;
    expect(await report).toEqual({ flushed: true, errors: [] });
  }, 20_000);

  it("reports not flushed when a tenant cannot be checkpointed, and answers 503 while closing", async () => {
    const objects = new FaultyObjectStore(new MemoryObjectStore());
    const dir = join(root, "fail");
    tokenFile(dir);
    const server = await createServer({ dataDir: dir, port: 0, objects });
    await server.app.inject({ method: "PUT", url: "/v1/state/g/k", headers: auth(tokens.acme), payload: "v" });
    objects.failNext("put", { times: 1000, match: (key) => key.startsWith("tenants/acme/") });
    objects.failNext("initMultipart", { times: 1000 });
    const report = await server.close();
    expect(report.flushed).toBe(false);
    expect(report.errors.join("\n")).toMatch(/tenants/);
    const late = await server.app.inject({ url: "/healthz" }).catch((err: Error) => err);
    expect(late instanceof Error || late.statusCode === 503).toBe(true);
  });
});
