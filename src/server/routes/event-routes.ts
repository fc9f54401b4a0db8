import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance } from "fastify";
import type { Outbox } from "../../uploads/index.js";
import { isAdmin, type RequestIdentity } from "../identity.js";
import { lastEventIdParam } from "../query-params.js";
import { identityOf } from "../request-context.js";

/** Options of {@link registerEventRoutes}. */
export interface EventRouteOptions {
  outbox: Outbox;
  /** The owner id of a caller: its tenant id (`org/users/user` or `org/org`). */
  ownerOf(identity: RequestIdentity): string;
  /** Open SSE streams; the server ends them on shutdown. */
  streams: Set<{ end(): void }>;
  /** How often a stream looks for new events, ms. */
  pollMs: number;
  /** Heartbeat comment interval, ms. Default 15 000. */
  heartbeatMs?: number;
}

/**
 * `GET /v1/events`: the upload events (`file.claimed`, `file.deleted`, `delete.dead_letter`)
 * of the caller as Server-Sent Events, `id` = the outbox id. A caller with a user id sees the
 * events of its own tenant; an org-level caller or an admin sees its whole org. Resumes after
 * `Last-Event-ID` (header, or `?lastEventId=` for clients that cannot set it) for as long as
 * the events are retained; without it the stream starts with new events only. Events come in
 * id order with none skipped, also on PostgreSQL where ids commit out of order
 * ({@link Outbox.follow}).
 */
export function registerEventRoutes(app: FastifyInstance, options: EventRouteOptions): void {
  app.get("/v1/events", async (request, reply) => {
    const identity = identityOf(request);
    const scope =
      isAdmin(identity) || identity.userId === undefined
        ? { ownerPrefixes: [`${identity.orgId}/`] }
        : { owners: [options.ownerOf(identity)] };
    const cursor = lastEventIdParam(request) ?? (await options.outbox.latestId());
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      // What the hooks set (the node that serves the stream, in a cluster) goes out too.
      ...(reply.getHeaders() as OutgoingHttpHeaders),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-store",
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
      connection: "keep-alive",
    });
    res.write(": events\n\n");
    const stopped = new AbortController();
    const stream = { end: () => stopped.abort() };
    options.streams.add(stream);
    request.raw.on("close", () => stream.end());
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), options.heartbeatMs ?? 15_000);
    try {
      for await (const event of options.outbox.follow(cursor, {
        ...scope,
        pollMs: options.pollMs,
        signal: stopped.signal,
      })) {
        res.write(`id: ${event.id}\nevent: ${event.topic}\ndata: ${JSON.stringify(event)}\n\n`);
      }
    } finally {
      clearInterval(heartbeat);
      options.streams.delete(stream);
      res.end();
    }
  });
}
