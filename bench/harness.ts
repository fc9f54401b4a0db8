import { mkdirSync, writeFileSync } from "node:fs";
import { Bench } from "tinybench";

/** One measured operation. Cases of one `group` are compared with that group's `raw` case. */
export interface BenchCase {
  /** Shown in the table, e.g. "storeroom sqlite get". */
  name: string;
  /** What is being compared, e.g. "point GET". */
  group: string;
  /** `ours` is storeroom, `raw` the bare driver doing the same statements, `peer` the nearest peer package. */
  role: "ours" | "raw" | "peer";
  /** Runs `batch` operations. */
  fn: () => unknown;
  /** Operations per call of `fn` (default 1); batching keeps timer overhead out of fast operations. */
  batch?: number;
  /** Another case of the same group (by name) to report a paired ratio against, e.g. the same code on another engine. */
  vs?: string;
}

/** A case's result: medians over all samples. */
export interface BenchResult {
  suite: string;
  group: string;
  name: string;
  role: BenchCase["role"];
  opsPerSecMedian: number;
  latencyMedianUs: number;
  latencyP99Us: number;
  samples: number;
  /** ours (or peer) / raw ops per second within the group, when the group has a raw case. */
  ratioToRaw?: number;
  /** ours / peer ops per second within the group, when the group has a peer case. */
  ratioToPeer?: number;
  /** This case / its `vs` case, ops per second. */
  ratioToVs?: number;
}

export interface SuiteOptions {
  /** Milliseconds per case and round (default 1500, or BENCH_TIME_MS). */
  timeMs?: number;
  /**
   * Rounds (default 3, or BENCH_ROUNDS). Each round runs every case, group by group so that
   * the cases compared with each other run back to back, with the order of groups and of
   * cases inside a group rotated by one per round, so no case always runs first or last.
   * Ops/s are medians over rounds; ratios are medians of the per-round ratios, which keeps
   * them steady on a machine whose speed drifts over minutes.
   */
  rounds?: number;
  /** Warm-up milliseconds per case (default 300). */
  warmupMs?: number;
  /**
   * Calls per case and round even when `timeMs` ran out (default tinybench's 64), and at most
   * as many warm-up calls (default 16). Lower it for suites whose slowest cases take tens of
   * milliseconds per call, so a run stays short.
   */
  minIterations?: number;
}

/**
 * Runs the cases in one process, prints a table of median ops/s with ratios to the raw
 * driver and the peer package, and writes `bench/results/<suite>.json`.
 */
export async function runSuite(suite: string, cases: BenchCase[], options: SuiteOptions = {}): Promise<BenchResult[]> {
  const timeMs = options.timeMs ?? Number(process.env.BENCH_TIME_MS ?? 1500);
  const rounds = Math.max(1, options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3));
  const samples = cases.map(() => ({ p50: [] as number[], p99: [] as number[], count: 0 }));
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({
      name: suite,
      time: timeMs,
      warmupTime: options.warmupMs ?? 300,
      ...(options.minIterations === undefined
        ? {}
        : { iterations: options.minIterations, warmupIterations: Math.min(16, options.minIterations) }),
    });
    for (const i of roundOrder(cases, round)) {
      const c = cases[i] as BenchCase;
      bench.add(`${c.group} :: ${c.name}`, c.fn);
    }
    await bench.run();
    cases.forEach((c, i) => {
      const r = bench.getTask(`${c.group} :: ${c.name}`)?.result as
        | { latency?: { p50: number; p99: number; samplesCount?: number } }
        | undefined;
      const slot = samples[i] as { p50: number[]; p99: number[]; count: number };
      slot.p50.push(r?.latency?.p50 ?? Number.NaN);
      slot.p99.push(r?.latency?.p99 ?? Number.NaN);
      slot.count += r?.latency?.samplesCount ?? 0;
    });
  }
  const results: BenchResult[] = cases.map((c, i) => {
    const slot = samples[i] as { p50: number[]; p99: number[]; count: number };
    const batch = c.batch ?? 1;
    const latencyMs = median(slot.p50);
    return {
      suite,
      group: c.group,
      name: c.name,
      role: c.role,
      opsPerSecMedian: (1000 / latencyMs) * batch,
      latencyMedianUs: (latencyMs * 1000) / batch,
      latencyP99Us: (median(slot.p99) * 1000) / batch,
      samples: slot.count,
    };
  });
  // Per round, ops/s ratio = other latency / own latency (per call; batches may differ).
  const pairedRatio = (i: number, j: number): number => {
    const own = samples[i] as { p50: number[] };
    const other = samples[j] as { p50: number[] };
    const ownBatch = cases[i]?.batch ?? 1;
    const otherBatch = cases[j]?.batch ?? 1;
    return median(own.p50.map((t, round) => ((other.p50[round] as number) / otherBatch / t) * ownBatch));
  };
  results.forEach((r, i) => {
    const raw = results.findIndex((x) => x.group === r.group && x.role === "raw");
    const peer = results.findIndex((x) => x.group === r.group && x.role === "peer");
    if (raw >= 0 && r.role !== "raw") r.ratioToRaw = pairedRatio(i, raw);
    if (peer >= 0 && r.role === "ours") r.ratioToPeer = pairedRatio(i, peer);
    const vs = cases[i]?.vs;
    const other = vs === undefined ? -1 : results.findIndex((x) => x.group === r.group && x.name === vs);
    if (other >= 0) r.ratioToVs = pairedRatio(i, other);
  });
  printTable(suite, results);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/${suite}.json`, import.meta.url),
    `${JSON.stringify({ suite, date: new Date().toISOString(), node: process.version, rounds, results }, null, 2)}\n`,
  );
  return results;
}

/** Case indexes for one round: grouped, with groups and cases inside a group rotated by `round`. */
function roundOrder(cases: BenchCase[], round: number): number[] {
  const groups = [...new Set(cases.map((c) => c.group))];
  const rotate = <T>(xs: T[]): T[] => xs.map((_, k) => xs[(k + round) % xs.length] as T);
  return rotate(groups).flatMap((g) => rotate(cases.flatMap((c, i) => (c.group === g ? [i] : []))));
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function printTable(suite: string, results: BenchResult[]): void {
  const fmt = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? "" : n.toFixed(digits));
  console.log(`\n## ${suite}`);
  console.table(
    results.map((r) => ({
      group: r.group,
      case: r.name,
      "ops/s (median)": Math.round(r.opsPerSecMedian).toLocaleString("en-US"),
      "p50 µs": fmt(r.latencyMedianUs),
      "p99 µs": fmt(r.latencyP99Us),
      "x raw": fmt(r.ratioToRaw),
      "x peer": fmt(r.ratioToPeer),
      ...(results.some((x) => x.ratioToVs !== undefined) ? { "x vs": fmt(r.ratioToVs) } : {}),
    })),
  );
}
