import type { FastifyInstance } from "fastify";
import { orgParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";
import type { ServerParts } from "../server-parts.js";

/**
 * Admin `GET /v1/tenants?org=`: every tenant stored in object storage, with residency on this
 * server and, for a resident one, its replication lag. An `admin` sees its own org only (the
 * default `org`); an `operator` sees every org, or `org`.
 */
export function registerTenantRoutes(app: FastifyInstance, parts: Pick<ServerParts, "tenants">): void {
  app.get("/v1/tenants", { config: { auth: "admin" } }, async (request) => {
    const org = administeredOrg(identityOf(request), orgParam(request));
    const listing = await parts.tenants.list(org === undefined ? {} : { orgId: org });
    const tenants = [];
    for (const t of listing) {
      // In memory only: the inspector reads groups too, and only for its first tenants.
      const info = await parts.tenants.inspect(t.key);
      tenants.push({
        tenant: t.key.toString(),
        orgId: t.key.orgId,
        ...(t.key.userId === undefined ? {} : { userId: t.key.userId }),
        scope: t.key.scope,
        size: t.size,
        etag: t.etag,
        lastModified: t.lastModified,
        resident: info.resident,
        ...(info.replica === null ? {} : { lagMs: info.replica.lagMs }),
      });
    }
    return { tenants };
  });
}
