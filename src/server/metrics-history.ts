import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { clockOption, functionOption, objectOption, positiveInteger } from "../internal/option-checks.js";
import type { ServerMetrics } from "./server-metrics.js";

/** One point of {@link MetricsHistory}: what the server looked like over the interval ending at `t`. */
export interface MetricsSample {
  /** End of the interval, ms since the epoch. */
  readonly t: number;
  /** HTTP requests answered per second over the interval. */
  readonly requestsPerSecond: number;
  /** 99th percentile request latency over the interval in ms (bucket upper bound), `null` without requests. */
  readonly p99Ms: number | null;
  readonly residentTenants?: number;
  /** Open Server-Sent Events streams. */
  readonly sseStreams?: number;
  /** Connected bus peers. */
  readonly busPeers?: number;
  /** Depth per queue (the `storeroom_queue_depth` series). */
  readonly queues?: Readonly<Record<string, number>>;
  /** Largest replication lag of a tenant in ms, when the tenant store reports one. */
  readonly replicationLagMs?: number;
}

/** Options of {@link MetricsHistory}. */
export interface MetricsHistoryOptions {
  metrics: ServerMetrics;
  /** Time between samples in ms. Default 10000 (an hour is 360 samples). `0`: only {@link MetricsHistory.sample}. */
  intervalMs?: number;
  /** Samples kept; the oldest is dropped first. Default 360. */
  capacity?: number;
  /** Largest replication lag in ms right now, when the tenant store can tell. */
  replicationLagMs?: () => number | undefined;
  clock?: Clock;
  /** Failed timer samples. Default: a process warning. */
  onError?: (err: unknown) => void;
}

interface Totals {
  requests: number;
  /** Cumulative count per bucket upper bound in seconds, ascending (`+Inf` last). */
  buckets: [number, number][];
}

/**
 * An in-process ring buffer of the metrics that matter (requests/s, p99 latency, resident
 * tenants, queue depths, streams, peers, replication lag), sampled on a background job, so
 * the console can draw the last hour without a metrics database.
 */
export class MetricsHistory {
  readonly #metrics: ServerMetrics;
  readonly #capacity: number;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #lag: (() => number | undefined) | undefined;
  readonly #job: BackgroundJob<void>;
  readonly #onError: (err: unknown) => void;
  readonly #samples: MetricsSample[] = [];
  #last: { t: number; totals: Totals } | undefined;

  constructor(options: MetricsHistoryOptions) {
    const op = "metrics.history";
    const intervalMs = checkIntervalMs(options.intervalMs, "intervalMs", op, 10_000);
    const capacity = positiveInteger(options.capacity, "capacity", op, 360);
    this.#metrics = objectOption(options.metrics, "metrics", op, "a ServerMetrics", ["readGauges"]);
    this.#capacity = capacity;
    this.#intervalMs = intervalMs;
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#lag = functionOption(options.replicationLagMs, "replicationLagMs", op);
    this.#onError =
      functionOption(options.onError, "onError", op) ??
      ((err) => process.emitWarning(`metrics history: ${String(err)}`));
    this.#job = new BackgroundJob({
      name: "metrics history",
      intervalMs,
      clock: this.#clock,
      run: () => this.#sample(),
      onError: this.#onError,
    });
  }

  /** Time between samples in ms. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** Starts sampling every `intervalMs` (the first sample sets the baseline for rates). */
  start(): void {
    this.#job.runOnce().catch(this.#onError);
    this.#job.start();
  }

  /** Stops sampling; waits for a sample in progress. */
  stop(): Promise<void> {
    return this.#job.stop();
  }

  /** Takes a sample now (after one in progress). */
  sample(): Promise<void> {
    return this.#job.runOnce();
  }

  /** The samples kept, oldest first. */
  samples(): MetricsSample[] {
    return [...this.#samples];
  }

  async #sample(): Promise<void> {
    const t = this.#clock.now();
    const totals = await this.#totals();
    const gauges = await this.#metrics.readGauges();
    const previous = this.#last;
    this.#last = { t, totals };
    if (previous === undefined) return;
    const seconds = Math.max((t - previous.t) / 1000, 0.001);
    const requests = Math.max(totals.requests - previous.totals.requests, 0);
    const lag = this.#lag?.();
    const sample: MetricsSample = {
      t,
      requestsPerSecond: requests / seconds,
      p99Ms: percentileMs(previous.totals.buckets, totals.buckets, 0.99),
      ...(gauges.residentTenants === undefined ? {} : { residentTenants: gauges.residentTenants }),
      ...(gauges.sseStreams === undefined ? {} : { sseStreams: gauges.sseStreams }),
      ...(gauges.busPeers === undefined ? {} : { busPeers: gauges.busPeers }),
      ...(gauges.queueDepths === undefined ? {} : { queues: gauges.queueDepths }),
      ...(lag === undefined ? {} : { replicationLagMs: lag }),
    };
    this.#samples.push(sample);
    if (this.#samples.length > this.#capacity) this.#samples.shift();
  }

  async #totals(): Promise<Totals> {
    const requests = (await this.#metrics.requests.get()).values.reduce((n, v) => n + v.value, 0);
    const perBound = new Map<number, number>();
    for (const v of (await this.#metrics.latency.get()).values) {
      if (v.metricName?.endsWith("_bucket") !== true) continue;
      const bound = (v.labels as Record<string, string | number | undefined>).le;
      const le = bound === "+Inf" ? Number.POSITIVE_INFINITY : Number(bound);
      perBound.set(le, (perBound.get(le) ?? 0) + v.value);
    }
    return { requests, buckets: [...perBound].sort((a, b) => a[0] - b[0]) };
  }
}

/** The `q` quantile of the observations between two cumulative histograms, as the bucket's upper bound in ms. */
function percentileMs(before: [number, number][], after: [number, number][], q: number): number | null {
  const earlier = new Map(before);
  const deltas = after.map(([le, count]) => [le, count - (earlier.get(le) ?? 0)] as const);
  const total = deltas.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let bound = Number.POSITIVE_INFINITY;
  for (const [le, count] of deltas) {
    if (count >= rank) {
      bound = le;
      break;
    }
  }
  // Past the largest finite bucket: report that bound rather than infinity.
  if (bound === Number.POSITIVE_INFINITY) bound = deltas.at(-2)?.[0] ?? 0;
  return bound * 1000;
}
