import type { FastifyRequest } from "fastify";
import { TenantKey } from "../tenants/index.js";
import { HttpError } from "./error-reply.js";
import { canAdministerOrg } from "./identity.js";
import { tenantKeyOf } from "./identity-policy.js";
import { identityOf } from "./request-context.js";

/**
 * A `preHandler` for the state, upload and file routes: `?tenant=<org>/org` or
 * `?tenant=<org>/users/<user>` makes the request act on that tenant instead of the caller's
 * own, for an admin of that org (an operator: any org). The request then carries the tenant's
 * identity without roles, so it can do exactly what the tenant's own token could. Anyone else
 * gets 403 `ACCESS_DENIED`; a malformed or reserved tenant id 400 `INVALID_KEY`. Without the
 * parameter nothing changes.
 */
export async function actAsRequestedTenant(request: FastifyRequest): Promise<void> {
  const requested = (request.query as Record<string, string | undefined> | undefined)?.tenant;
  if (requested === undefined) return;
  const caller = identityOf(request);
  const key = TenantKey.parse(requested);
  const identity = Object.freeze({
    orgId: key.orgId,
    ...(key.userId === undefined ? {} : { userId: key.userId }),
    roles: Object.freeze([] as string[]),
  });
  // A reserved org id is bad input like a malformed one: 400 for every caller, before the role check.
  tenantKeyOf(identity);
  if (!canAdministerOrg(caller, key.orgId)) {
    throw new HttpError(403, "ACCESS_DENIED", "acting on a tenant needs the admin role of its org (or operator)");
  }
  request.identity = identity;
}
