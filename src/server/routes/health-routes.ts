import type { FastifyInstance } from "fastify";
import type { ServerMetrics } from "../server-metrics.js";

/** `GET /healthz` (anonymous), `GET /metrics` (Prometheus text; any identified caller), `GET /v1/whoami`. */
export function registerHealthRoutes(app: FastifyInstance, parts: { metrics: ServerMetrics }): void {
  app.get("/healthz", { config: { auth: "none" } }, async () => ({ status: "ok" }));
  app.get("/metrics", async (_request, reply) => {
    const { contentType, text } = await parts.metrics.render();
    return reply.type(contentType).send(text);
  });
  app.get("/v1/whoami", async (request) => ({ identity: request.identity }));
}
