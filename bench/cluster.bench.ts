import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { runLoad } from "./autocannon-load.js";
import { scratchPostgres } from "./scratch-postgres.js";
import { type ServeChild, startServeChild } from "./serve-child.js";

/**
 * bench/cluster: `storeroom serve` nodes on one PostgreSQL control database and one
 * filesystem object store (each node a child process, load from autocannon in another).
 * State GET and PUT (`--durability async`) over 20 tenants:
 * - 1 node, every request served where it lands;
 * - 2 nodes, every request sent to the node that does not own the tenant (each one forwarded):
 *   the forwarding overhead, beside a bare Node `http` proxy in front of the owner (the raw
 *   cost of one more hop);
 * - 2 nodes, the load split over both and the tenants' owners split too (half forwarded);
 * - 3 nodes owning a third of the tenants each, the load over all tenants split evenly across
 *   the three (requests round-robin over the nodes: two thirds forwarded), beside 1 of those
 *   nodes taking the whole load for its own tenants.
 * Rounds alternate the cases; medians and paired ratios. Then the takeover time after a
 * kill -9 of a tenant's owner (`--lease-ms 1000`): until a PUT through the other node is
 * acknowledged. Needs POSTGRES_URL. Writes bench/results/cluster.json.
 */

const tenantCount = 20;
const connections = Number(process.env.BENCH_CONNECTIONS ?? 16);
const cli = new URL("../dist/cli/main.js", import.meta.url).pathname;
const operator = "bench-operator-token-xxxxxxxxxxxxxxxx";
const tokens = Array.from({ length: tenantCount }, (_, i) => `bench-cluster-token-${String(i).padStart(4, "0")}-xxxx`);
const busSecret = "bench-cluster-bus-secret-".padEnd(48, "x");

interface Load {
  rps: number;
  p50: number;
  p99: number;
  bad: number;
}

async function load(url: string, method: "GET" | "PUT", tenants: string[], conns = connections): Promise<Load> {
  const seconds = Math.max(1, Math.round(Number(process.env.BENCH_TIME_MS ?? 4000) / 1000));
  const requests = tenants.map((t) => ({
    method,
    path: "/v1/state/bench/key",
    headers: { authorization: `Bearer ${t}` },
    ...(method === "PUT" ? { body: "value-0123456789" } : {}),
  }));
  const r = await runLoad({ url, connections: conns, seconds, requests });
  return { rps: r.rps, p50: r.p50, p99: r.p99, bad: r.non2xx + r.errors };
}

async function startNode(
  root: string,
  name: string,
  database: string,
  objects: string,
  leaseMs: number,
): Promise<ServeChild> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "tokens.json"),
    JSON.stringify({
      tokens: [
        ...tokens.map((token, i) => ({ token, orgId: `t${i}` })),
        { token: operator, orgId: "ops", roles: ["operator"] },
      ],
    }),
  );
  return startServeChild(cli, ["--data", dir, "--database", database, "--objects", objects], {
    STOREROOM_LEASE_MS: String(leaseMs),
    STOREROOM_BUS_HMAC_SECRET: busSecret,
  });
}

async function put(url: string, token: string): Promise<number> {
  try {
    const res = await fetch(`${url}/v1/state/bench/key`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body: "value-0123456789",
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** A bare proxy: every request piped to `target` over keep-alive connections (the raw cost of a hop). */
async function bareProxy(target: string): Promise<{ url: string; close(): void }> {
  const to = new URL(target);
  const agent = new (await import("node:http")).Agent({ keepAlive: true, maxSockets: 256 });
  const server = createHttpServer((req, res) => {
    const upstream = request(
      { agent, hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.close();
      agent.destroy();
    },
  };
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

export default async function clusterBench(): Promise<Record<string, unknown> | undefined> {
  const base = process.env.POSTGRES_URL;
  if (!base) {
    console.warn("POSTGRES_URL is not set: cluster bench skipped");
    return undefined;
  }
  const root = mkdtempSync(join(tmpdir(), "storeroom-bench-cluster-"));
  const db = await scratchPostgres(base, "cluster_bench");
  const objects = `file://${join(root, "objects")}`;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const runs: Record<string, Load[]> = {};
  const record = (k: string, r: Load) => {
    runs[k] ??= [];
    runs[k].push(r);
  };
  const nodes: ServeChild[] = [];
  try {
    const a = await startNode(root, "a", db.url, objects, 15_000);
    nodes.push(a);
    const b = await startNode(root, "b", db.url, objects, 15_000);
    nodes.push(b);
    // A owns the first half of the tenants, B the second (each takes a lease on first use).
    const half = tenantCount / 2;
    for (const [i, t] of tokens.entries())
      if ((await put(i < half ? a.url : b.url, t)) !== 204) throw new Error("warm-up");
    const ownedByA = tokens.slice(0, half);
    const proxy = await bareProxy(a.url);
    try {
      for (let round = 0; round < rounds; round++) {
        for (const method of ["GET", "PUT"] as const) {
          record(`${method} 1 node (served where it lands)`, await load(a.url, method, ownedByA));
          record(`${method} 2 nodes, every request forwarded`, await load(b.url, method, ownedByA));
          record(`${method} bare Node proxy in front of the owner`, await load(proxy.url, method, ownedByA));
          const [x, y] = await Promise.all([
            load(a.url, method, tokens, connections / 2),
            load(b.url, method, tokens, connections / 2),
          ]);
          record(`${method} 2 nodes, load and owners split (half forwarded)`, {
            rps: x.rps + y.rps,
            p50: Math.max(x.p50, y.p50),
            p99: Math.max(x.p99, y.p99),
            bad: x.bad + y.bad,
          });
        }
      }
    } finally {
      proxy.close();
    }
    for (const n of nodes.splice(0)) await n.stop();

    // Three nodes, owners by thirds (the stopped nodes released their leases).
    const three: ServeChild[] = [];
    for (const name of ["r0", "r1", "r2"]) {
      const n = await startNode(root, name, db.url, objects, 15_000);
      nodes.push(n);
      three.push(n);
    }
    for (const [i, t] of tokens.entries())
      for (let tries = 0; (await put((three[i % 3] as ServeChild).url, t)) !== 204; tries++)
        if (tries > 500) throw new Error("warm-up of three nodes");
    const ownedByFirst = tokens.filter((_, i) => i % 3 === 0);
    const share = (i: number) => Math.floor(connections / 3) + (i < connections % 3 ? 1 : 0);
    for (let round = 0; round < rounds; round++) {
      for (const method of ["GET", "PUT"] as const) {
        record(`${method} 1 of 3 nodes, its own tenants`, await load(three[0]?.url as string, method, ownedByFirst));
        const parts = await Promise.all(three.map((n, i) => load(n.url, method, tokens, share(i))));
        record(`${method} 3 nodes round-robin, owners by thirds`, {
          rps: parts.reduce((sum, x) => sum + x.rps, 0),
          p50: Math.max(...parts.map((x) => x.p50)),
          p99: Math.max(...parts.map((x) => x.p99)),
          bad: parts.reduce((sum, x) => sum + x.bad, 0),
        });
      }
    }
    for (const n of nodes.splice(0)) await n.stop();

    // Takeover after kill -9: owner and standby swap every run, a fresh node replaces the killed one.
    const takeoverRuns = Number(process.env.BENCH_TAKEOVER_RUNS ?? 20);
    const leaseMs = 1_000;
    const takeovers: number[] = [];
    let owner = await startNode(root, "k0", db.url, objects, leaseMs);
    let standby = await startNode(root, "k1", db.url, objects, leaseMs);
    nodes.push(owner, standby);
    for (let i = 0; i < takeoverRuns; i++) {
      const token = tokens[i % tenantCount] as string;
      // Free the tenant from earlier runs' owners, then let `owner` take it.
      for (let tries = 0; (await put(owner.url, token)) !== 204; tries++) if (tries > 500) throw new Error("no owner");
      await owner.stop("SIGKILL");
      nodes.splice(nodes.indexOf(owner), 1);
      const killedAt = performance.now();
      while ((await put(standby.url, token)) !== 204);
      takeovers.push(performance.now() - killedAt);
      owner = standby;
      standby = await startNode(root, `k${i + 2}`, db.url, objects, leaseMs);
      nodes.push(standby);
    }

    const summary = Object.fromEntries(
      Object.entries(runs).map(([k, r]) => [
        k,
        {
          rps: med(r.map((x) => x.rps)),
          p50: med(r.map((x) => x.p50)),
          p99: med(r.map((x) => x.p99)),
          bad: r.reduce((n, x) => n + x.bad, 0),
        },
      ]),
    );
    const paired = (x: string, y: string) =>
      med((runs[x] ?? []).map((r, i) => r.rps / ((runs[y] ?? [])[i]?.rps ?? Number.NaN)));
    const ratios: Record<string, number> = {};
    for (const m of ["GET", "PUT"]) {
      ratios[`${m} forwarded / 1 node`] = paired(
        `${m} 2 nodes, every request forwarded`,
        `${m} 1 node (served where it lands)`,
      );
      ratios[`${m} bare proxy / 1 node`] = paired(
        `${m} bare Node proxy in front of the owner`,
        `${m} 1 node (served where it lands)`,
      );
      ratios[`${m} forwarded / bare proxy`] = paired(
        `${m} 2 nodes, every request forwarded`,
        `${m} bare Node proxy in front of the owner`,
      );
      ratios[`${m} 2 nodes split / 1 node`] = paired(
        `${m} 2 nodes, load and owners split (half forwarded)`,
        `${m} 1 node (served where it lands)`,
      );
      ratios[`${m} 3 nodes round-robin / 1 node`] = paired(
        `${m} 3 nodes round-robin, owners by thirds`,
        `${m} 1 of 3 nodes, its own tenants`,
      );
    }
    const takeover = {
      runs: takeovers.length,
      leaseMs,
      p50Ms: Math.round(quantile(takeovers, 0.5)),
      p99Ms: Math.round(quantile(takeovers, 0.99)),
      maxMs: Math.round(Math.max(...takeovers)),
    };
    console.log(
      `\ncluster: state GET/PUT (async), ${tenantCount} tenants, ${connections} connections, ${rounds} alternating rounds`,
    );
    console.log("| case | req/s | p50 ms | p99 ms | non-2xx |");
    console.log("| --- | ---: | ---: | ---: | ---: |");
    for (const [k, v] of Object.entries(summary))
      console.log(`| ${k} | ${Math.round(v.rps)} | ${v.p50} | ${v.p99} | ${v.bad} |`);
    console.log("paired ratios (median of per-round ratios):", ratios);
    console.log("takeover after kill -9 of the owner:", takeover);
    const loadAverage = loadavg().map((x) => Number(x.toFixed(2)));
    console.log("load average (1, 5, 15 min):", loadAverage);
    const result = { summary, ratios, takeover, takeovers, runs, loadAverage };
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(new URL("./results/cluster.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    for (const n of nodes) await n.stop("SIGKILL").catch(() => undefined);
    await db.drop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}
