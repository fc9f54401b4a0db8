import { lineChart, type Series } from "../chart.js";
import { h, mount } from "../dom.js";
import type { PageContext } from "../session.js";
import { errorBox, pageHeader } from "../ui.js";

interface Sample {
  t: number;
  requestsPerSecond: number;
  p99Ms: number | null;
  residentTenants?: number;
  sseStreams?: number;
  busPeers?: number;
  queues?: Record<string, number>;
  replicationLagMs?: number;
}

/** The last hour from the server's in-process ring buffer (`GET /v1/metrics/history`), redrawn every 10 s. */
export async function healthPage(ctx: PageContext): Promise<Node> {
  const { api, operator } = ctx.session;
  const grid = h("div", { class: "charts", id: "charts" });
  const note = h("p", { class: "subtitle" });
  const draw = async () => {
    try {
      const { intervalMs, samples } = await api.json<{ intervalMs: number; samples: Sample[] }>("/v1/metrics/history", {
        signal: ctx.signal,
      });
      const line = (name: string, pick: (s: Sample) => number | null | undefined): Series => ({
        name,
        points: samples.map((s) => [s.t, pick(s) ?? null]),
      });
      const queueNames = [...new Set(samples.flatMap((s) => Object.keys(s.queues ?? {})))].sort();
      const hasLag = samples.some((s) => s.replicationLagMs !== undefined);
      note.textContent = `${samples.length} sample(s), one every ${Math.round(intervalMs / 1000)} s, kept in memory for the last hour.`;
      mount(
        grid,
        lineChart("Requests", [line("req/s", (s) => s.requestsPerSecond)], "req/s", { id: "chart-requests" }),
        lineChart("Latency p99", [line("p99", (s) => s.p99Ms)], "ms", { id: "chart-p99" }),
        lineChart("Resident tenants", [line("resident", (s) => s.residentTenants)], "", { id: "chart-resident" }),
        hasLag
          ? lineChart("Replication lag", [line("lag", (s) => s.replicationLagMs)], "ms", { id: "chart-lag" })
          : h(
              "figure",
              { class: "chart-card", id: "chart-lag" },
              h("figcaption", null, h("span", { class: "title" }, "Replication lag")),
              h("div", { class: "chart empty" }, "no replication lag samples yet"),
            ),
        operator
          ? lineChart(
              "Queue depths",
              queueNames.map((q) => line(q, (s) => s.queues?.[q])),
              "rows",
              { id: "chart-queues" },
            )
          : null,
        lineChart(
          "Streams and peers",
          [line("SSE streams", (s) => s.sseStreams), line("bus peers", (s) => s.busPeers)],
          "",
          { id: "chart-connections" },
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(grid, errorBox(err));
    }
  };
  await draw();
  ctx.every(10_000, () => void draw());
  return h("div", null, pageHeader("Health", note), grid);
}
