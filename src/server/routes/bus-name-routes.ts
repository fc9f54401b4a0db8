import type { FastifyInstance, FastifyRequest } from "fastify";
import { TenantKey } from "../../tenants/index.js";
import { HttpError } from "../error-reply.js";
import { requireJsonBody } from "../json-body.js";
import type { PeerNames } from "../peer-names.js";
import { orgParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";

/**
 * Admin routes over bus peer name ownership, scoped like every admin route (an admin's own org;
 * an operator's `?org=`, default its own):
 * `GET /v1/bus/names`, `PUT /v1/bus/names/:name` (`{"userId"?}`: give the name to a user, or to
 * the org itself), `DELETE /v1/bus/names/:name` (free it for the next registration).
 */
export function registerBusNameRoutes(app: FastifyInstance, peerNames: PeerNames): void {
  const orgOf = (request: FastifyRequest, identity: ReturnType<typeof identityOf>, all: boolean) => {
    const requested = orgParam(request);
    return administeredOrg(identity, requested ?? (all ? undefined : identity.orgId));
  };

  app.get("/v1/bus/names", { config: { auth: "admin" } }, async (request) => ({
    names: await peerNames.list(orgOf(request, identityOf(request), true)),
  }));

  app.put("/v1/bus/names/:name", { config: { auth: "admin" }, preParsing: requireJsonBody }, async (request) => {
    const orgId = orgOf(request, identityOf(request), false) as string;
    const body = (request.body ?? {}) as { userId?: unknown };
    if (typeof body !== "object" || (body.userId !== undefined && typeof body.userId !== "string")) {
      throw new HttpError(400, "INVALID_ARGUMENT", 'the body is {"userId"?: string}');
    }
    if (body.userId !== undefined) TenantKey.user(orgId, body.userId).validate();
    return peerNames.assign(orgId, (request.params as { name: string }).name, body.userId);
  });

  app.delete("/v1/bus/names/:name", { config: { auth: "admin" } }, async (request, reply) => {
    const orgId = orgOf(request, identityOf(request), false) as string;
    await peerNames.release(orgId, (request.params as { name: string }).name);
    return reply.code(204).send();
  });
}
