import type { FastifyRequest } from "fastify";
import { HttpError } from "./error-reply.js";
import type { RequestIdentity } from "./identity.js";
import { canAdministerOrg, isAdmin, isOperator } from "./identity.js";

/** Who may call a route: anyone, anyone (identity read if present), an identified caller, an admin. */
export type RouteAuth = "none" | "optional" | "required" | "admin";

declare module "fastify" {
  interface FastifyRequest {
    /** The caller, or `null` when anonymous (only on routes whose `auth` allows it). */
    identity: RequestIdentity | null;
  }
  interface FastifyContextConfig {
    /** Default `"required"`. */
    auth?: RouteAuth;
  }
}

/** The caller of a route that requires identity; throws 401 when anonymous. */
export function identityOf(request: FastifyRequest): RequestIdentity {
  if (request.identity === null) throw unauthenticated();
  return request.identity;
}

/** The 401 answer for a missing or untrusted identity. */
export function unauthenticated(): HttpError {
  return new HttpError(401, "UNAUTHENTICATED", "missing or invalid credentials");
}

/** Checks a route's `auth` level against the caller; throws 401/403. */
export function enforceAuth(level: RouteAuth, identity: RequestIdentity | null): void {
  if (level === "none" || level === "optional") return;
  if (identity === null) throw unauthenticated();
  if (level === "admin" && !isAdmin(identity)) throw new HttpError(403, "ACCESS_DENIED", "admin role required");
}

/**
 * The org an admin route acts on: `requested` when the caller may administer it (else 403
 * `ACCESS_DENIED`), or by default the caller's own org; `undefined` (every org) only for an
 * operator who asked for no org.
 */
export function administeredOrg(identity: RequestIdentity, requested: string | undefined): string | undefined {
  if (requested === "") throw new HttpError(400, "INVALID_ARGUMENT", "org must not be empty");
  if (requested === undefined) return isOperator(identity) ? undefined : identity.orgId;
  if (!canAdministerOrg(identity, requested)) {
    throw new HttpError(403, "ACCESS_DENIED", "an admin manages its own org only (the operator role sees every org)");
  }
  return requested;
}
