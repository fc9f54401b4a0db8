import * as prom from "prom-client";
import { describe, expect, it } from "vitest";
import { ManualClock, ManualScheduler } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { MetricsHistory } from "../../src/server/metrics-history.js";
import { ServerMetrics } from "../../src/server/server-metrics.js";

const request = (metrics: ServerMetrics, seconds: number, route = "/v1/state/:group/:key") => {
  metrics.requests.inc({ method: "GET", route, status: "200" });
  metrics.latency.observe({ method: "GET", route }, seconds);
};

describe("MetricsHistory", () => {
  it("derives requests per second and the p99 of each interval from the counters", async () => {
    const metrics = new ServerMetrics(prom);
    const clock = new ManualClock(1_000_000);
    const history = new MetricsHistory({ metrics, clock, intervalMs: 0 });
    for (let i = 0; i < 5; i++) request(metrics, 0.002);
    await history.sample(); // the baseline: what happened before it is not an interval
    expect(history.samples()).toEqual([]);

    for (let i = 0; i < 99; i++) request(metrics, 0.0008);
    request(metrics, 2, "/v1/uploads");
    clock.advance(10_000);
    await history.sample();
    clock.advance(10_000);
    await history.sample();
    for (let i = 0; i < 98; i++) request(metrics, 0.0008);
    for (let i = 0; i < 2; i++) request(metrics, 2);
    clock.advance(20_000);
    await history.sample();

    expect(history.samples().map((s) => [s.t, s.requestsPerSecond, s.p99Ms])).toEqual([
      [1_010_000, 10, 1], // 100 requests in 10 s; 99 of them in the 1 ms bucket
      [1_020_000, 0, null], // nothing happened
      [1_040_000, 5, 2500], // the slowest 2 % sit in the 2.5 s bucket
    ]);
  });

  it("keeps the gauges of the sources and drops a source that fails", async () => {
    const metrics = new ServerMetrics(prom);
    metrics.setSources({
      residentTenants: () => 4,
      queueDepths: async () => ({ delete: 1, bus_pending: 0 }),
      sseStreams: () => {
        throw new Error("gone");
      },
      busPeers: () => 3,
    });
    const history = new MetricsHistory({
      metrics,
      clock: new ManualClock(0),
      intervalMs: 0,
      replicationLagMs: () => 250,
    });
    await history.sample();
    await history.sample();
    expect(history.samples()[0]).toEqual({
      t: 0,
      requestsPerSecond: 0,
      p99Ms: null,
      residentTenants: 4,
      busPeers: 3,
      queues: { delete: 1, bus_pending: 0 },
      replicationLagMs: 250,
    });
  });

  it("is a ring: the oldest sample leaves when it is full", async () => {
    const clock = new ManualClock(0);
    const history = new MetricsHistory({ metrics: new ServerMetrics(prom), clock, intervalMs: 0, capacity: 3 });
    for (let i = 0; i <= 5; i++) {
      await history.sample();
      clock.advance(1_000);
    }
    expect(history.samples().map((s) => s.t)).toEqual([3_000, 4_000, 5_000]);
  });

  it("samples on its background job's schedule", async () => {
    const clock = new ManualScheduler(0);
    const history = new MetricsHistory({ metrics: new ServerMetrics(prom), clock, intervalMs: 10_000 });
    history.start();
    const deadline = Date.now() + 5000;
    while (history.samples().length < 2) {
      if (Date.now() > deadline) throw new Error("no samples from the schedule");
      clock.advance(10_000);
      await new Promise((r) => setImmediate(r));
    }
    await history.stop();
    expect(history.samples()[1]!.t - history.samples()[0]!.t).toBe(10_000);
    expect(history.intervalMs).toBe(10_000);
  });

  it("rejects a capacity that is not a positive integer", () => {
    for (const capacity of [0, -1, 1.5]) {
      expect(() => new MetricsHistory({ metrics: new ServerMetrics(prom), capacity })).toThrow(InvalidArgumentError);
    }
  });
});
