import type { FastifyInstance, FastifyRequest } from "fastify";
import { HttpError } from "../error-reply.js";
import { maxBacklogCount, type OrgBuses } from "../org-buses.js";
import { integerParam, orgParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";

/** Most messages one tail request returns. */
const maxTail = 200;

/**
 * Admin routes over an org's bus, for the admin's own org (an operator: `?org=`, default its
 * own): `GET /v1/bus/peers` (registered peers, connected or not, last seen, backlog),
 * `GET /v1/bus/messages?limit=` (the latest messages without bodies, newest first),
 * `GET /v1/bus/messages/:id` (one message with its envelope) and
 * `POST /v1/bus/audit/verify` (verifies the org's audit chain now).
 */
export function registerBusAdminRoutes(app: FastifyInstance, buses: OrgBuses): void {
  const orgOf = (request: FastifyRequest): string => {
    const identity = identityOf(request);
    return administeredOrg(identity, orgParam(request) ?? identity.orgId) ?? "";
  };

  app.get("/v1/bus/peers", { config: { auth: "admin" } }, async (request) => {
    const orgId = orgOf(request);
    return { orgId, maxBacklog: maxBacklogCount, peers: await buses.peers(orgId) };
  });

  app.get("/v1/bus/messages", { config: { auth: "admin" } }, async (request) => {
    const orgId = orgOf(request);
    const limit = integerParam(request, "limit", { min: 1, max: maxTail }) ?? 50;
    const messages = await buses.recentMessages(orgId, limit);
    return {
      orgId,
      messages: messages.map((m) => ({
        id: m.id,
        from: m.from,
        to: m.to,
        size: m.envelope.byteLength,
        seq: m.seq,
        ts: m.ts,
        delivered: m.delivered,
        acked: m.acked,
      })),
    };
  });

  app.get("/v1/bus/messages/:id", { config: { auth: "admin" } }, async (request) => {
    const orgId = orgOf(request);
    const { id } = request.params as { id: string };
    const m = await buses.message(orgId, id);
    if (m === undefined) throw new HttpError(404, "NOT_FOUND", `no message ${id} on the bus of ${orgId}`);
    const bytes = Buffer.from(m.envelope);
    const text = bytes.toString("utf8");
    const utf8 = Buffer.from(text, "utf8").equals(bytes);
    return {
      id: m.id,
      from: m.from,
      to: m.to,
      size: bytes.byteLength,
      seq: m.seq,
      ts: m.ts,
      delivered: m.delivered,
      acked: m.acked,
      encoding: utf8 ? "utf8" : "base64",
      envelope: utf8 ? text : bytes.toString("base64"),
    };
  });

  app.post("/v1/bus/audit/verify", { config: { auth: "admin" } }, async (request) => buses.verifyAudit(orgOf(request)));
}
