import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { createServer } from "../src/server/index.js";

/**
 * bench/serve: HTTP throughput and latency of `storeroom serve` on loopback. The server runs
 * in this process; the load comes from autocannon in a second Node process. Cases: a bare
 * Fastify route returning a constant (the ceiling), state GET, state PUT and conditional state
 * PUT (`If-Match: *`) spread over 100 tenants (one bearer token each). Writes
 * bench/results/serve.json.
 */

const tenantCount = 100;
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);

interface LoadResult {
  name: string;
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
}

// The load generator: autocannon cycling through one request per tenant on every connection.
const loadScript = `
const autocannon = require("autocannon");
const spec = JSON.parse(process.argv[1]);
autocannon({ url: spec.url, connections: spec.connections, duration: spec.seconds, requests: spec.requests }, (err, r) => {
  if (err) { console.error(err); process.exit(2); }
  process.stdout.write(JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors }));
});
`;

async function load(name: string, url: string, requests: object[]): Promise<LoadResult> {
  const seconds = Math.max(1, Math.round(Number(process.env.BENCH_TIME_MS ?? 8000) / 1000));
  const spec = JSON.stringify({ url, connections, seconds, requests });
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", loadScript, spec], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (c: Buffer) => {
      text += c.toString();
    });
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited ${code}`))));
  });
  const r = JSON.parse(out) as { rps: number; p50: number; p99: number; non2xx: number; errors: number };
  return { name, requestsPerSec: r.rps, latencyP50Ms: r.p50, latencyP99Ms: r.p99, non2xx: r.non2xx, errors: r.errors };
}

export default async function serveBench(): Promise<LoadResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-serve-"));
  const tokens = Array.from({ length: tenantCount }, (_, i) => ({
    token: `bench-token-${String(i).padStart(4, "0")}-xxxxxxxx`,
    orgId: `t${i}`,
  }));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens }));
  const results: LoadResult[] = [];

  const bare = Fastify();
  bare.get("/const", async () => ({ ok: true }));
  const bareUrl = await bare.listen({ host: "127.0.0.1", port: 0 });
  results.push(await load("bare Fastify constant route (ceiling)", bareUrl, [{ method: "GET", path: "/const" }]));
  await bare.close();

  const server = await createServer({ dataDir: dir, port: 0, inspector: false });
  const url = await server.listen();
  let report: { flushed: boolean; errors: readonly string[] } | undefined;
  try {
    for (const t of tokens) {
      const res = await fetch(`${url}/v1/state/bench/key`, {
        method: "PUT",
        headers: { authorization: `Bearer ${t.token}` },
        body: "value-0123456789",
      });
      if (res.status !== 204) throw new Error(`warm-up PUT failed: ${res.status}`);
    }
    const perTenant = (method: string, body?: string, extra: Record<string, string> = {}) =>
      tokens.map((t) => ({
        method,
        path: "/v1/state/bench/key",
        headers: { authorization: `Bearer ${t.token}`, ...extra },
        ...(body === undefined ? {} : { body }),
      }));
    results.push(await load(`state GET, ${tenantCount} tenants`, url, perTenant("GET")));
    results.push(await load(`state PUT, ${tenantCount} tenants`, url, perTenant("PUT", "value-0123456789")));
    // If-Match: * reads the entry, checks it and writes with ifVersion: the conditional path's full cost.
    results.push(
      await load(
        `state PUT with If-Match, ${tenantCount} tenants`,
        url,
        perTenant("PUT", "value-0123456789", { "if-match": "*" }),
      ),
    );
  } finally {
    report = await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (!report.flushed) throw new Error(`bench server did not flush: ${report.errors.join("; ")}`);

  const ceiling = results[0]?.requestsPerSec ?? Number.NaN;
  console.log(`\nserve (${connections} connections, autocannon in a second process)`);
  console.log("| case | req/s | p50 ms | p99 ms | vs ceiling | non-2xx |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${Math.round(r.requestsPerSec)} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${(r.requestsPerSec / ceiling).toFixed(2)}x | ${r.non2xx + r.errors} |`,
    );
  }
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(
    new URL("./results/serve.json", import.meta.url),
    `${JSON.stringify({ connections, tenants: tenantCount, results }, null, 2)}\n`,
  );
  return results;
}
