import { AccessDeniedError, InvalidKeyError } from "../errors.js";
import { TenantKey } from "../tenants/index.js";
import { type RequestIdentity, Role } from "./identity.js";

/** Org ids that would share a key prefix with uploaded files (`pub/`, `priv/`) or reconcile's quarantine. */
export const reservedOrgIds: ReadonlySet<string> = new Set(["pub", "priv", "quarantine"]);

/** What an {@link acceptIdentity} call allows beyond the defaults. */
export interface IdentityPolicyOptions {
  /** Whether this source may grant the `operator` role (true for the token store; gateway only when configured). */
  operatorRole: boolean;
}

/**
 * The server's single identity rule, applied by every authenticator before a request runs:
 * the org (and user) ids are tenant slugs, the org id is not reserved, and `operator` only
 * comes from a source allowed to grant it. Returns a frozen copy; a bad id -> InvalidKeyError
 * (400), a refused role -> AccessDeniedError (403). Nothing is ever dropped or widened.
 */
export function acceptIdentity(
  identity: { orgId: string; userId?: string | undefined; roles: readonly string[] },
  options: IdentityPolicyOptions,
): RequestIdentity {
  tenantKeyOf(identity);
  if (!options.operatorRole && identity.roles.includes(Role.operator)) {
    throw new AccessDeniedError("the operator role is not accepted from this source", { op: "server.identity" });
  }
  return Object.freeze({
    orgId: identity.orgId,
    ...(identity.userId === undefined ? {} : { userId: identity.userId }),
    roles: Object.freeze([...identity.roles]),
  });
}

/** The caller's tenant: the user's database when the identity has a user id, else the org's. Validated. */
export function tenantKeyOf(identity: { orgId: string; userId?: string | undefined }): TenantKey {
  if (reservedOrgIds.has(identity.orgId)) {
    throw new InvalidKeyError(`org id "${identity.orgId}" is reserved (upload key prefixes)`, { op: "server.tenant" });
  }
  const key =
    identity.userId === undefined ? TenantKey.org(identity.orgId) : TenantKey.user(identity.orgId, identity.userId);
  key.validate();
  return key;
}
