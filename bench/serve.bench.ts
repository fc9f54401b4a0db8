import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { createServer } from "../src/server/index.js";
import { runLoad } from "./autocannon-load.js";
import { startServeChild } from "./serve-child.js";

/**
 * bench/serve: HTTP throughput and latency of `storeroom serve` on loopback. The server runs
 * in this process; the load comes from autocannon in a second Node process. Cases: a bare
 * Fastify route returning a constant (the ceiling), state GET, state PUT and conditional state
 * PUT (`If-Match: *`) spread over 100 tenants (one bearer token each). Then state PUT under
 * tenant replication, each server a `storeroom serve` child process on the filesystem store:
 * `--durability async`, `--durability sync`, and, when BENCH_BASELINE_CLI names the
 * `dist/cli/main.js` of an earlier build, that build's PUT (alternating rounds, paired ratios).
 * `BENCH_SERVE_CASES=replication` runs only the replication cases. Writes bench/results/serve.json.
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

async function load(name: string, url: string, requests: object[]): Promise<LoadResult> {
  const seconds = Math.max(1, Math.round(Number(process.env.BENCH_TIME_MS ?? 8000) / 1000));
  const r = await runLoad({ url, connections, seconds, requests });
  return { name, requestsPerSec: r.rps, latencyP50Ms: r.p50, latencyP99Ms: r.p99, non2xx: r.non2xx, errors: r.errors };
}

/** The upper bound (seconds) of the histogram bucket holding the q-quantile of `name` for `label`. */
function histogramQuantile(metrics: string, name: string, label: string, q: number): number {
  const buckets = metrics
    .split("\n")
    .filter((line) => line.startsWith(`${name}_bucket{`) && line.includes(label))
    .map((line) => ({
      le: /le="([^"]+)"/.exec(line)?.[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(/le="([^"]+)"/.exec(line)?.[1]),
      count: Number(line.slice(line.lastIndexOf(" ") + 1)),
    }))
    .sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  return buckets.find((b) => b.count >= q * total)?.le ?? Number.NaN;
}

interface ReplicationRound {
  name: string;
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  lagP50Ms?: number;
  lagP99Ms?: number;
}

/** State PUT over 100 tenants against one server child: warm-up, load, replication lag from /metrics. */
async function replicationRound(
  name: string,
  cli: string,
  args: string[],
  tokens: { token: string }[],
  operator: string,
  oneTenant = false,
): Promise<ReplicationRound> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-serve-repl-"));
  writeFileSync(
    join(dir, "tokens.json"),
    JSON.stringify({
      tokens: [
        ...tokens.map((t, i) => ({ ...t, orgId: `t${i}` })),
        { token: operator, orgId: "ops", roles: ["operator"] },
      ],
    }),
  );
  const server = await startServeChild(cli, ["--data", dir, ...args]);
  try {
    for (const t of tokens) {
      const res = await fetch(`${server.url}/v1/state/bench/key`, {
        method: "PUT",
        headers: { authorization: `Bearer ${t.token}` },
        body: "value-0123456789",
      });
      if (res.status !== 204) throw new Error(`warm-up PUT failed: ${res.status}`);
    }
    const requests = (oneTenant ? tokens.slice(0, 1) : tokens).map((t) => ({
      method: "PUT",
      path: "/v1/state/bench/key",
      headers: { authorization: `Bearer ${t.token}` },
      body: "value-0123456789",
    }));
    const r = await load(name, server.url, requests);
    const metrics = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${operator}` } })
    ).text();
    const lag = (q: number) =>
      histogramQuantile(metrics, "storeroom_replication_lag_seconds", 'durability="async"', q) * 1000;
    const round: ReplicationRound = { ...r, non2xx: r.non2xx + r.errors };
    if (args.includes("async")) Object.assign(round, { lagP50Ms: lag(0.5), lagP99Ms: lag(0.99) });
    return round;
  } finally {
    await server.stop();
    // Removed after all rounds: thousands of files freed at once slow the next round's file
    // creation on filesystems whose inode allocator skips recently freed inodes.
    roundDirs.push(dir);
  }
}

const roundDirs: string[] = [];

/** Alternating rounds of baseline / async / sync PUT servers; medians and paired ratios. */
async function replicationCases(tokens: { token: string }[]): Promise<Record<string, unknown>> {
  const ours = new URL("../dist/cli/main.js", import.meta.url).pathname;
  const baseline = process.env.BENCH_BASELINE_CLI;
  const operator = "bench-operator-token-xxxxxxxxxxxxxxxx";
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const runs: Record<string, ReplicationRound[]> = { baseline: [], async: [], sync: [], "sync, one tenant": [] };
  for (let i = 0; i < rounds; i++) {
    if (baseline)
      runs.baseline?.push(await replicationRound("before (whole-file checkpoints)", baseline, [], tokens, operator));
    runs.async?.push(await replicationRound("async", ours, ["--durability", "async"], tokens, operator));
    runs.sync?.push(await replicationRound("sync", ours, ["--durability", "sync"], tokens, operator));
    // Every connection on one tenant: concurrent commits share segments (group commit).
    runs["sync, one tenant"]?.push(
      await replicationRound("sync, one tenant", ours, ["--durability", "sync"], tokens, operator, true),
    );
  }
  for (const dir of roundDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const summary = Object.fromEntries(
    Object.entries(runs)
      .filter(([, r]) => r.length > 0)
      .map(([k, r]) => [
        k,
        {
          requestsPerSec: med(r.map((x) => x.requestsPerSec)),
          latencyP50Ms: med(r.map((x) => x.latencyP50Ms)),
          latencyP99Ms: med(r.map((x) => x.latencyP99Ms)),
          non2xx: r.reduce((n, x) => n + x.non2xx, 0),
          ...(k === "async"
            ? {
                lagP50Ms: med(r.map((x) => x.lagP50Ms ?? Number.NaN)),
                lagP99Ms: med(r.map((x) => x.lagP99Ms ?? Number.NaN)),
              }
            : {}),
        },
      ]),
  );
  const paired = (a: ReplicationRound[], b: ReplicationRound[]) =>
    med(a.map((x, i) => x.requestsPerSec / (b[i]?.requestsPerSec ?? Number.NaN)));
  const ratios: Record<string, number> = {
    "sync / async": paired(runs.sync ?? [], runs.async ?? []),
    "sync one tenant / async": paired(runs["sync, one tenant"] ?? [], runs.async ?? []),
  };
  if (baseline) ratios["async / before"] = paired(runs.async ?? [], runs.baseline ?? []);
  console.log(
    `\nserve: state PUT, ${tokens.length} tenants, ${connections} connections, child servers on the filesystem store (${rounds} alternating rounds)`,
  );
  console.log("| server | req/s | p50 ms | p99 ms | non-2xx | replication lag p50 / p99 ms |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [k, v] of Object.entries(summary) as [string, ReplicationRound][]) {
    const lag = v.lagP50Ms === undefined ? "" : `${v.lagP50Ms} / ${v.lagP99Ms}`;
    console.log(
      `| ${k} | ${Math.round(v.requestsPerSec)} | ${v.latencyP50Ms} | ${v.latencyP99Ms} | ${v.non2xx} | ${lag} |`,
    );
  }
  console.log("paired ratios (median of per-round ratios):", ratios);
  return { summary, ratios, runs };
}

export default async function serveBench(): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  const tokens = Array.from({ length: tenantCount }, (_, i) => ({
    token: `bench-token-${String(i).padStart(4, "0")}-xxxxxxxx`,
    orgId: `t${i}`,
  }));
  if (process.env.BENCH_SERVE_CASES !== "replication") await inProcessCases(tokens, results);
  const replication = await replicationCases(tokens);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(
    new URL("./results/serve.json", import.meta.url),
    `${JSON.stringify({ connections, tenants: tenantCount, results, replication }, null, 2)}\n`,
  );
  return results;
}

/** The bare Fastify ceiling and state GET / PUT against a server in this process. */
async function inProcessCases(tokens: { token: string; orgId: string }[], results: LoadResult[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-serve-"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens }));

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
}
