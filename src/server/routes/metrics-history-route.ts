import type { FastifyInstance } from "fastify";
import { isOperator } from "../identity.js";
import type { MetricsHistory } from "../metrics-history.js";
import { identityOf } from "../request-context.js";

/**
 * Admin `GET /v1/metrics/history`: the in-process samples of the last hour (requests/s, p99,
 * resident tenants, streams, peers, replication lag), oldest first. Queue depths are
 * server-wide, so only an operator gets them.
 */
export function registerMetricsHistoryRoute(app: FastifyInstance, history: MetricsHistory): void {
  app.get("/v1/metrics/history", { config: { auth: "admin" } }, async (request) => {
    const operator = isOperator(identityOf(request));
    const samples = history
      .samples()
      .map((s) =>
        operator || s.queues === undefined ? s : Object.fromEntries(Object.entries(s).filter(([k]) => k !== "queues")),
      );
    return { intervalMs: history.intervalMs, samples };
  });
}
