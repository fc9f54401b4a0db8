import type { Counter, Histogram, Registry } from "prom-client";
import type { ServerPackages } from "./server-packages.js";

/** Gauges read at scrape time; each returns the current value or throws (the scrape then omits it). */
export interface MetricSources {
  /** Open tenant handles. */
  residentTenants?: () => number;
  /** Queue depths by name, e.g. `{ delete: 3, claims_pending: 1, bus_pending: 0 }`. */
  queueDepths?: () => Promise<Record<string, number>>;
  /** Age of the oldest undelivered upload event, ms. */
  outboxLagMs?: () => Promise<number>;
  /** Server-Sent Events streams open right now (state change streams). */
  sseStreams?: () => number;
  /** WebSocket peers connected to the bus right now, over every org broker of this process. */
  busPeers?: () => number;
}

/** The gauges of {@link MetricSources} read once; a source that is not set or failed is left out. */
export interface GaugeReadings {
  residentTenants?: number;
  queueDepths?: Record<string, number>;
  sseStreams?: number;
  busPeers?: number;
}

/**
 * The server's Prometheus metrics in their own registry (several servers can live in one
 * process): request counts and latencies per route, resident tenants, checkpoint failures,
 * queue depths, open SSE streams and bus peers, plus the process and Node.js defaults
 * (`process_*`, `nodejs_*`: CPU, memory, event loop lag, handles, GC).
 */
export class ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"method" | "route" | "status">;
  readonly latency: Histogram<"method" | "route">;
  readonly checkpointFailures: Counter;
  readonly backgroundFailures: Counter<"job">;
  /** Upload events every sink accepted. */
  readonly outboxDelivered: Counter;
  /** Failed delivery attempts of upload events; `outcome` is `retry` or `dead_letter`. */
  readonly outboxFailures: Counter<"outcome">;
  #sources: MetricSources = {};

  /** `prom` is prom-client, loaded by the caller (it is an optional package). */
  constructor(prom: ServerPackages["promClient"]) {
    const { Counter, Gauge, Histogram, Registry } = prom;
    this.registry = new Registry();
    const registers = [this.registry];
    prom.collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "storeroom_http_requests_total",
      help: "HTTP requests by method, route pattern and status code.",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.latency = new Histogram({
      name: "storeroom_http_request_duration_seconds",
      help: "HTTP request latency by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.checkpointFailures = new Counter({
      name: "storeroom_checkpoint_failures_total",
      help: "Tenant checkpoints (reaper, interval, shutdown) that failed.",
      registers,
    });
    this.backgroundFailures = new Counter({
      name: "storeroom_background_failures_total",
      help: "Failed runs of background jobs (claim sweeper, delete worker, state purge).",
      labelNames: ["job"],
      registers,
    });
    this.outboxDelivered = new Counter({
      name: "storeroom_outbox_delivered_total",
      help: "Upload events delivered to every configured sink.",
      registers,
    });
    this.outboxFailures = new Counter({
      name: "storeroom_outbox_failures_total",
      help: "Failed delivery attempts of upload events, by outcome (retry, dead_letter).",
      labelNames: ["outcome"],
      registers,
    });
    const sources = () => this.#sources;
    new Gauge({
      name: "storeroom_outbox_lag_seconds",
      help: "Age of the oldest upload event not yet delivered (0 when none).",
      registers,
      async collect() {
        const read = sources().outboxLagMs;
        if (read) this.set((await read()) / 1000);
      },
    });
    new Gauge({
      name: "storeroom_resident_tenants",
      help: "Tenant databases currently open in this process.",
      registers,
      collect() {
        const read = sources().residentTenants;
        if (read) this.set(read());
      },
    });
    new Gauge({
      name: "storeroom_queue_depth",
      help: "Rows waiting per queue: delete (due or leased deletes), claims_pending (unfinished uploads), outbox_pending (undispatched upload events), bus_pending (undelivered bus messages, all orgs open here).",
      labelNames: ["queue"],
      registers,
      async collect() {
        const read = sources().queueDepths;
        if (!read) return;
        for (const [queue, depth] of Object.entries(await read())) this.set({ queue }, depth);
      },
    });
    new Gauge({
      name: "storeroom_sse_streams",
      help: "Server-Sent Events streams open right now.",
      registers,
      collect() {
        const read = sources().sseStreams;
        if (read) this.set(read());
      },
    });
    new Gauge({
      name: "storeroom_bus_peers",
      help: "WebSocket peers connected to the bus right now (every org broker of this process).",
      registers,
      collect() {
        const read = sources().busPeers;
        if (read) this.set(read());
      },
    });
  }

  /** Reads every scrape-time gauge source once (for the console's history). */
  async readGauges(): Promise<GaugeReadings> {
    const sources = this.#sources;
    const out: GaugeReadings = {};
    const read = <T>(fn: (() => T) | undefined): T | undefined => {
      try {
        return fn?.();
      } catch {
        return undefined;
      }
    };
    const resident = read(sources.residentTenants);
    if (resident !== undefined) out.residentTenants = resident;
    const sse = read(sources.sseStreams);
    if (sse !== undefined) out.sseStreams = sse;
    const peers = read(sources.busPeers);
    if (peers !== undefined) out.busPeers = peers;
    const depths = await read(sources.queueDepths)?.catch(() => undefined);
    if (depths !== undefined) out.queueDepths = depths;
    return out;
  }

  /** Connects the scrape-time gauges to the running parts. */
  setSources(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** Prometheus text exposition format. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
