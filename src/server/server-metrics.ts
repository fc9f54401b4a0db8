import type { Counter, Histogram, Registry } from "prom-client";
import type { ReplicationCounters, ShipEvent } from "../tenants/index.js";
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
  /** Acked bus messages deleted after their retention window, over every org broker of this process since it started. */
  busAckedPruned?: () => number;
  /** Several nodes on one control database: leases held here, forwarding and lease counters, membership. */
  cluster?: () => ClusterReadings;
  /** Tenant replication: cumulative counters, current lag and the durability mode. */
  replication?: () => {
    counters: Readonly<ReplicationCounters>;
    lag: { ms: number; bytes: number };
    durability: string;
  };
}

/** What a node of a cluster reports to `/metrics`. */
export interface ClusterReadings {
  /** Tenants whose lease this node holds now. */
  ownedTenants: number;
  /** Nodes with a fresh heartbeat, and those seen within a day that are stopped or silent. */
  liveNodes: number;
  downNodes: number;
  /** Requests streamed to their owner, answered 307, or that found the owner unreachable; requests other nodes forwarded here. */
  forwarded: { proxied: number; redirected: number; unreachable: number; received: number };
  /** Lease counters: taken, taken from an expired holder, lost to another node. */
  leases: { acquired: number; steals: number; lost: number };
}

/** The gauges of {@link MetricSources} read once; a source that is not set or failed is left out. */
export interface GaugeReadings {
  residentTenants?: number;
  queueDepths?: Record<string, number>;
  sseStreams?: number;
  busPeers?: number;
}

/** Cumulative replication counters exported as Prometheus counters (name, help, field, scale). */
const replicationCounters: readonly [string, string, keyof ReplicationCounters, number][] = [
  ["storeroom_replication_segments_total", "WAL segments published.", "segments", 1],
  ["storeroom_replication_segment_bytes_total", "Stored bytes of published WAL segments.", "segmentBytes", 1],
  ["storeroom_replication_manifests_total", "Tenant manifests published.", "manifests", 1],
  ["storeroom_replication_manifest_bytes_total", "Bytes of published tenant manifests.", "manifestBytes", 1],
  ["storeroom_replication_snapshots_total", "Tenant snapshots published.", "snapshots", 1],
  ["storeroom_replication_snapshot_bytes_total", "Stored bytes of published snapshots.", "snapshotBytes", 1],
  ["storeroom_replication_snapshot_seconds_total", "Time spent taking and uploading snapshots.", "snapshotMs", 0.001],
  ["storeroom_replication_failures_total", "Publication attempts that failed (retried).", "failures", 1],
  [
    "storeroom_tenant_conflicts_total",
    "Tenants lost to another writer (fenced publications, diverged cached copies).",
    "conflicts",
    1,
  ],
  ["storeroom_tenant_restores_total", "Tenant hydrations from object storage.", "restores", 1],
  ["storeroom_tenant_restore_seconds_total", "Time spent hydrating tenants from object storage.", "restoreMs", 0.001],
  ["storeroom_tenant_restore_bytes_total", "Bytes downloaded to hydrate tenants.", "restoreBytes", 1],
];

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
  /** Deliveries of upload events, by sink (each sink counts its own). */
  readonly outboxDelivered: Counter<"sink">;
  /** Failed delivery attempts of upload events, by sink; `outcome` is `retry` or `dead_letter`. */
  readonly outboxFailures: Counter<"outcome" | "sink">;
  /** Replication lag ended by each publication round, seconds, by durability mode. */
  readonly replicationLag: Histogram<"durability">;
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
      help: "Deliveries of upload events, by sink.",
      labelNames: ["sink"],
      registers,
    });
    this.outboxFailures = new Counter({
      name: "storeroom_outbox_failures_total",
      help: "Failed delivery attempts of upload events, by outcome (retry, dead_letter) and sink.",
      labelNames: ["outcome", "sink"],
      registers,
    });
    this.replicationLag = new Histogram({
      name: "storeroom_replication_lag_seconds",
      help: "Age of the oldest write each tenant publication round published, by durability mode.",
      labelNames: ["durability"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10, 30],
      registers,
    });
    const sources = () => this.#sources;
    /** A gauge set at scrape time from a source; left unset while the source is not connected. */
    const scrapeGauge = (
      name: string,
      help: string,
      value: () => number | undefined | Promise<number | undefined>,
    ): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const v = await value();
          if (v !== undefined) this.set(v);
        },
      });
    };
    for (const [name, help, field, scale] of replicationCounters) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const read = sources().replication;
          if (!read) return;
          this.reset();
          this.inc(read().counters[field] * scale);
        },
      });
    }
    new Gauge({
      name: "storeroom_replication_lag_current_seconds",
      help: "Age of the oldest unpublished write among resident tenants, by durability mode.",
      labelNames: ["durability"],
      registers,
      collect() {
        const read = sources().replication;
        if (!read) return;
        const r = read();
        this.set({ durability: r.durability }, r.lag.ms / 1000);
      },
    });
    new Gauge({
      name: "storeroom_replication_lag_bytes",
      help: "WAL bytes of resident tenants not yet published, by durability mode.",
      labelNames: ["durability"],
      registers,
      collect() {
        const read = sources().replication;
        if (!read) return;
        const r = read();
        this.set({ durability: r.durability }, r.lag.bytes);
      },
    });
    scrapeGauge(
      "storeroom_outbox_lag_seconds",
      "Age of the oldest upload event not yet delivered (0 when none).",
      async () => {
        const read = sources().outboxLagMs;
        return read ? (await read()) / 1000 : undefined;
      },
    );
    scrapeGauge("storeroom_resident_tenants", "Tenant databases currently open in this process.", () =>
      sources().residentTenants?.(),
    );
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
    scrapeGauge("storeroom_sse_streams", "Server-Sent Events streams open right now.", () => sources().sseStreams?.());
    scrapeGauge(
      "storeroom_owned_tenants",
      "Tenants whose ownership lease this node holds (several nodes on one control database).",
      () => sources().cluster?.().ownedTenants,
    );
    new Gauge({
      name: "storeroom_cluster_nodes",
      help: "Nodes on this control database seen within a day, by state (live: fresh heartbeat; down: stopped or silent).",
      labelNames: ["state"],
      registers,
      collect() {
        const read = sources().cluster;
        if (!read) return;
        const r = read();
        this.set({ state: "live" }, r.liveNodes);
        this.set({ state: "down" }, r.downNodes);
      },
    });
    new Counter({
      name: "storeroom_forwarded_requests_total",
      help: "Requests for a tenant another node owns, by outcome: proxied (streamed to the owner), redirected (307), unreachable (owner not reachable, retried until its lease expired), received (forwarded here by another node).",
      labelNames: ["outcome"],
      registers,
      collect() {
        const read = sources().cluster;
        if (!read) return;
        this.reset();
        for (const [outcome, n] of Object.entries(read().forwarded)) this.inc({ outcome }, n);
      },
    });
    for (const [name, help, field] of [
      ["storeroom_lease_acquisitions_total", "Tenant leases this node took.", "acquired"],
      ["storeroom_lease_steals_total", "Tenant leases this node took from a node whose lease had expired.", "steals"],
      ["storeroom_leases_lost_total", "Tenant leases this node lost to another node before releasing them.", "lost"],
    ] as const) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          const read = sources().cluster;
          if (!read) return;
          this.reset();
          this.inc(read().leases[field]);
        },
      });
    }
    new Counter({
      name: "storeroom_bus_acked_pruned_total",
      help: "Acked bus messages deleted once their duplicate-detection window passed (every org broker of this process).",
      registers,
      collect() {
        const read = sources().busAckedPruned;
        if (!read) return;
        this.reset();
        this.inc(read());
      },
    });
    scrapeGauge(
      "storeroom_bus_peers",
      "WebSocket peers connected to the bus right now (every org broker of this process).",
      () => sources().busPeers?.(),
    );
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

  /** Records a tenant publication round. */
  shipped(event: ShipEvent): void {
    if (event.transactions > 0) this.replicationLag.observe({ durability: event.durability }, event.lagMs / 1000);
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
