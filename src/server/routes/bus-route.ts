import { type IncomingMessage, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import { authChallenge } from "../auth-challenge.js";
import { busTenantOf, type Cluster } from "../cluster.js";
import { errorReply, HttpError } from "../error-reply.js";
import type { Authenticator, RequestIdentity } from "../identity.js";
import type { OrgBuses } from "../org-buses.js";

/**
 * `GET /v1/bus`: a WebSocket upgrade to the peerbus v1 protocol, on the broker of the caller's
 * org. The upgrade is authenticated like any request (bearer token or gateway headers); a
 * plain GET answers 426.
 */
export function registerBusRoute(
  app: FastifyInstance,
  auth: Authenticator,
  buses: OrgBuses,
  cluster: Cluster | undefined,
): void {
  app.get("/v1/bus", async () => {
    throw new HttpError(426, "UPGRADE_REQUIRED", "connect with a WebSocket (peerbus v1)");
  });
  app.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/v1/bus") return refuse(socket, new HttpError(404, "NOT_FOUND", "no WebSocket endpoint here"));
    const challenge = authChallenge(auth.mode, req.headers.authorization !== undefined);
    let identity: RequestIdentity | null;
    try {
      identity = auth.identify(req.headers);
    } catch (err) {
      return refuse(socket, err, challenge);
    }
    if (identity === null)
      return refuse(socket, new HttpError(401, "UNAUTHENTICATED", "missing or invalid credentials"), challenge);
    const caller = identity;
    void (async () => {
      // The org's bus runs on the node that owns the org's tenant; elsewhere the socket is spliced there.
      const placement =
        cluster === undefined
          ? undefined
          : await cluster.routeUpgrade(req, socket, head, caller, busTenantOf(caller.orgId));
      if (placement === false) return;
      if (placement !== undefined) socket.once("close", () => placement.release());
      try {
        const broker = await buses.broker(caller.orgId);
        broker.handleUpgrade(req, socket, head, caller);
      } catch (err) {
        placement?.release();
        throw err;
      }
    })().catch((err: unknown) => refuse(socket, err));
  });
}

function refuse(socket: Duplex, err: unknown, challenge?: string): void {
  const { status, body } = errorReply(err);
  const text = JSON.stringify(body);
  const authenticate = status === 401 && challenge !== undefined ? `www-authenticate: ${challenge}\r\n` : "";
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${authenticate}connection: close\r\n\r\n${text}`,
  );
}
