import { existsSync } from "node:fs";
import { join } from "node:path";
import * as prom from "prom-client";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { createServer, resolveServerOptions, type ServerOptions, TokenStore } from "../../src/server/index.js";
import { MetricsHistory } from "../../src/server/metrics-history.js";
import { ServerMetrics } from "../../src/server/server-metrics.js";
import { useTempDir } from "../support/temp-dir.js";

const secret = "s".repeat(40);

/** Runs `build` and returns what it threw (synchronously or as a rejection). */
async function thrown(build: () => unknown): Promise<unknown> {
  try {
    await build();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("server options", () => {
  const dir = useTempDir();
  let n = 0;

  it("resolveServerOptions and createServer refuse every bad option by name, before creating anything", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ dataDir: "" }, /^dataDir must be a non-empty string/],
      [{ host: 5 }, /^host must be a non-empty string/],
      [{ database: "" }, /^database must be a non-empty string/],
      [{ objects: "" }, /^objects must be a non-empty string/],
      [{ objects: { get: () => null } }, /^objects must be an ObjectStore/],
      [{ tokensFile: "" }, /^tokensFile must be a non-empty string/],
      [{ auth: "gateway" }, /^gatewaySecret is required: gateway mode needs a gateway secret/],
      [{ auth: "gateway", gatewaySecret: "short" }, /^gatewaySecret must be a string of at least 32 bytes/],
      [{ busHmacSecret: "short" }, /^busHmacSecret must be a string of at least 32 bytes/],
      [{ busHmacSecret: 42 }, /^busHmacSecret must be a string/],
      [{ gatewayOperatorRole: "yes" }, /^gatewayOperatorRole must be a boolean/],
      [{ inspector: "off" }, /^inspector must be a boolean/],
      [{ unsafeNoCas: 1 }, /^unsafeNoCas must be a boolean/],
      [{ logger: "json" }, /^logger must be a boolean/],
      [{ clock: { now: 5 } }, /^clock must be a Clock \(an object with now\(\)\)/],
      [{ maxValueBytes: 0 }, /^maxValueBytes must be a positive integer, got 0/],
      [{ maxJsonBytes: 1.5 }, /^maxJsonBytes must be a positive integer/],
      [{ shutdownGraceMs: -1 }, /^shutdownGraceMs must be a non-negative integer/],
      [{ uploads: { allowPublic: "true" } }, /^uploads\.allowPublic must be a boolean/],
      [{ uploads: { appendLeaseMs: 0 } }, /^uploads\.appendLeaseMs must be a positive integer/],
      [{ events: { webhooks: "http://x" } }, /^events\.webhooks must be an array/],
      [{ events: { webhooks: [5] } }, /^webhooks must be http\(s\) URLs/],
      [{ events: { secret: "short" } }, /^events\.secret must be a string of at least 32 bytes/],
      [{ events: { pollMs: 0 } }, /^events\.pollMs must be a positive integer/],
      [{ tenants: 5 }, /^tenants must be an object/],
      [{ tenants: { lruSize: 0 } }, /^tenants\.lruSize must be a positive integer/],
      [{ tenants: { durability: "later" } }, /^tenants\.durability must be "async" or "sync"/],
      [{ tenants: { idleTtlMs: -1 } }, /^tenants\.idleTtlMs must be a number >= 0/],
      [{ bus: { pruneIntervalMs: -1 } }, /^bus\.pruneIntervalMs must be/],
      [{ intervals: { sweepMs: 0.5 } }, /^intervals\.sweepMs must be/],
      [{ cluster: "on" }, /^cluster must be an object/],
    ];
    for (const [bad, message] of cases) {
      const label = JSON.stringify(bad);
      const error = await thrown(() => resolveServerOptions(bad as ServerOptions));
      expect(error, label).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message, label).toMatch(message);
      const dataDir = join(dir, `server-${n++}`);
      const opened = await thrown(() => createServer({ dataDir, port: 0, ...bad } as ServerOptions));
      expect(opened, label).toBeInstanceOf(InvalidArgumentError);
      expect(existsSync(dataDir), label).toBe(false); // nothing was created
    }
    expect(resolveServerOptions({ auth: "gateway", gatewaySecret: secret, shutdownGraceMs: 0 })).toMatchObject({
      gatewaySecret: secret,
      shutdownGraceMs: 0,
    });
  });

  it("TokenStore.open refuses a bad clock, flag or callback before creating the file's directory", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ clock: 5 }, /^clock must be a Clock/],
      [{ bootstrap: "yes" }, /^bootstrap must be a boolean/],
      [{ watch: 1 }, /^watch must be a boolean/],
      [{ onReloadError: "log" }, /^onReloadError must be a function/],
      [{ afterWrite: {} }, /^afterWrite must be a function/],
      [{ path: "" }, /^path must name the tokens file/],
    ];
    for (const [bad, message] of cases) {
      const folder = join(dir, `tokens-${n++}`);
      const error = await thrown(() => TokenStore.open({ path: join(folder, "tokens.json"), ...bad } as never));
      expect(error, JSON.stringify(bad)).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message, JSON.stringify(bad)).toMatch(message);
      expect(existsSync(folder)).toBe(false);
    }
  });

  it("MetricsHistory refuses a bad option by name and starts no timer", async () => {
    const metrics = new ServerMetrics(prom);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ metrics: undefined }, /^metrics must be a ServerMetrics/],
      [{ intervalMs: -1 }, /^intervalMs must be an integer from 0/],
      [{ capacity: 0 }, /^capacity must be a positive integer, got 0/],
      [{ clock: {} }, /^clock must be a Clock/],
      [{ replicationLagMs: 5 }, /^replicationLagMs must be a function/],
      [{ onError: true }, /^onError must be a function/],
    ];
    for (const [bad, message] of cases) {
      const error = await thrown(() => new MetricsHistory({ metrics, ...bad } as never));
      expect(error, JSON.stringify(bad)).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message, JSON.stringify(bad)).toMatch(message);
    }
  });
});
