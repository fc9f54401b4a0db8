import type { IncomingHttpHeaders } from "node:http";

/** Who is calling: the org (always), the user (when the caller is a user) and their roles. */
export interface RequestIdentity {
  /** Org slug, e.g. `"acme"`. */
  readonly orgId: string;
  /** User slug, when the caller acts as a user; state then lives in the user's tenant. */
  readonly userId?: string;
  /** Roles, e.g. `["admin"]`; see {@link Role} for the ones the server gives meaning to. */
  readonly roles: readonly string[];
}

/**
 * The roles the server gives meaning to (any other role name is carried along and grants
 * nothing):
 * - `admin`: manages its own org: lists its tenants, sees it in the inspector, manages its
 *   tokens and bus peer names. Never another org.
 * - `operator`: everything `admin` may do, for every org. Granted only through the token store
 *   or, in gateway mode, when the server is started with `gatewayOperatorRole: true`.
 */
export const Role = Object.freeze({ admin: "admin", operator: "operator" } as const);

/**
 * Turns request headers into an identity.
 *
 * @example
 * ```ts
 * const auth: Authenticator = new TokenAuthenticator(await TokenStore.open({ path: "./.storeroom/tokens.json" }));
 * const who = auth.identify(request.headers); // { orgId, userId?, roles } or null
 * ```
 */
export interface Authenticator {
  /** `"token"` (bearer tokens from the token store) or `"gateway"` (trusted headers with a shared secret). */
  readonly mode: "token" | "gateway";
  /**
   * The identity carried by these headers, or `null` when the request carries no credentials
   * at all. Credentials that are present but unknown, expired or untrusted throw
   * `UnauthenticatedError` (401); identity values that are present but malformed throw
   * `InvalidKeyError` (400). Never returns an identity other than the one presented.
   */
  identify(headers: IncomingHttpHeaders): RequestIdentity | null;
}

/** True when the identity may use the admin routes at all (role `admin` or `operator`). */
export function isAdmin(identity: RequestIdentity): boolean {
  return identity.roles.includes(Role.admin) || isOperator(identity);
}

/** True when the identity carries the `operator` role (every org). */
export function isOperator(identity: RequestIdentity): boolean {
  return identity.roles.includes(Role.operator);
}

/** True when the identity may manage `orgId`: an operator, or an admin of that very org. */
export function canAdministerOrg(identity: RequestIdentity, orgId: string): boolean {
  return isOperator(identity) || (identity.roles.includes(Role.admin) && identity.orgId === orgId);
}
