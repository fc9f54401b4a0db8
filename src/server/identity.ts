import type { IncomingHttpHeaders } from "node:http";

/** Who is calling: the org (always), the user (when the caller is a user) and their roles. */
export interface RequestIdentity {
  /** Org slug, e.g. `"acme"`. */
  readonly orgId: string;
  /** User slug, when the caller acts as a user; state then lives in the user's tenant. */
  readonly userId?: string;
  /** Roles, e.g. `["admin"]`; `admin` may read `GET /v1/tenants` and the inspector data. */
  readonly roles: readonly string[];
}

/**
 * Turns request headers into an identity. Implementations never throw for a missing or bad
 * credential: they return `null` and the server answers 401 `UNAUTHENTICATED`.
 *
 * @example
 * ```ts
 * const auth: Authenticator = await TokenAuthenticator.open({ dataDir: "./.storeroom" });
 * const who = auth.identify(request.headers); // { orgId, userId?, roles } or null
 * ```
 */
export interface Authenticator {
  /** `"token"` (bearer tokens from a file) or `"gateway"` (trusted headers with a shared secret). */
  readonly mode: "token" | "gateway";
  /** The identity carried by these headers, or `null` when there is none or it is not trusted. */
  identify(headers: IncomingHttpHeaders): RequestIdentity | null;
}

/** True when the identity carries the `admin` role. */
export function isAdmin(identity: RequestIdentity): boolean {
  return identity.roles.includes("admin");
}
