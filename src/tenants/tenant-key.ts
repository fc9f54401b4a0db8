import { join } from "node:path";
import { InvalidKeyError } from "../errors.js";

/** `"user"`: one database per (org, user); `"org"`: one org-wide database. */
export type TenantScope = "user" | "org";

/** The plain shape of a {@link TenantKey}; store methods accept either. */
export interface TenantKeyInit {
  /** Org slug: 1-128 bytes of `[a-z0-9_-]`. */
  orgId: string;
  /** User slug (same rules); required for scope `"user"`, ignored for `"org"`. */
  userId?: string | undefined;
  /** Default `"user"` when `userId` is given, else `"org"`. */
  scope?: TenantScope;
}

/** Longest org or user slug, in bytes. IAM ULIDs are 26 characters and UUIDs 36, so 128 is generous. */
export const MAX_SLUG_LENGTH = 128;

const slugPattern = /^[a-z0-9_-]+$/;
const userObjectKey = /^([a-z0-9_-]{1,128})\/users\/([a-z0-9_-]{1,128})\.db$/;
const orgObjectKey = /^([a-z0-9_-]{1,128})\/org\.db$/;
const userPrefix = /^tenants\/([a-z0-9_-]{1,128})\/users\/([a-z0-9_-]{1,128})\/$/;
const orgPrefix = /^tenants\/([a-z0-9_-]{1,128})\/org\/$/;

/**
 * Identifies one tenant database. Build keys from untrusted input freely; {@link TenantKey.validate}
 * rejects anything that could reach the filesystem or object storage as a traversal, and every
 * {@link TenantStore} method validates before touching either.
 *
 * @example
 * ```ts
 * const key = TenantKey.user("acme", "ada");
 * key.validate();
 * key.prefix(); // "tenants/acme/users/ada/" (manifest, snapshots, segments)
 * key.objectKey(); // "acme/users/ada.db" (the layout before replication)
 * key.localPath("/var/cache/tenants"); // "/var/cache/tenants/acme/users/ada.db"
 * TenantKey.org("acme").toString(); // "acme/org"
 * ```
 */
export class TenantKey {
  readonly orgId: string;
  readonly userId: string | undefined;
  readonly scope: TenantScope;

  constructor(init: TenantKeyInit) {
    this.orgId = init.orgId;
    this.scope = init.scope ?? (init.userId === undefined ? "org" : "user");
    this.userId = this.scope === "user" ? init.userId : undefined;
  }

  /** The key of a user's database. */
  static user(orgId: string, userId: string): TenantKey {
    return new TenantKey({ orgId, userId, scope: "user" });
  }

  /** The key of an org-wide database. */
  static org(orgId: string): TenantKey {
    return new TenantKey({ orgId, scope: "org" });
  }

  /** Returns `key` itself when it is a TenantKey, else a TenantKey built from the plain shape. */
  static from(key: TenantKey | TenantKeyInit): TenantKey {
    return key instanceof TenantKey ? key : new TenantKey(key);
  }

  /** The tenant whose objects live under `prefix` (as returned by {@link TenantKey.prefix}), or `undefined`. */
  static fromPrefix(prefix: string): TenantKey | undefined {
    const user = userPrefix.exec(prefix);
    if (user) return TenantKey.user(user[1] as string, user[2] as string);
    const org = orgPrefix.exec(prefix);
    if (org) return TenantKey.org(org[1] as string);
    return undefined;
  }

  /** The tenant a key in the old single-object layout belongs to, or `undefined` when it is not one. */
  static fromObjectKey(objectKey: string): TenantKey | undefined {
    const user = userObjectKey.exec(objectKey);
    if (user) return TenantKey.user(user[1] as string, user[2] as string);
    const org = orgObjectKey.exec(objectKey);
    if (org) return TenantKey.org(org[1] as string);
    return undefined;
  }

  /**
   * Parses the {@link TenantKey.toString} form (`"acme/users/ada"`, `"acme/org"`); the result is
   * validated. Anything else -> {@link InvalidKeyError}.
   */
  static parse(text: string): TenantKey {
    const parts = typeof text === "string" ? text.split("/") : [];
    let key: TenantKey | undefined;
    if (parts.length === 3 && parts[1] === "users") key = TenantKey.user(parts[0] as string, parts[2] as string);
    else if (parts.length === 2 && parts[1] === "org") key = TenantKey.org(parts[0] as string);
    if (key === undefined) {
      throw new InvalidKeyError('a tenant is written "org/users/user" or "org/org"', { op: "tenants.key" });
    }
    key.validate();
    return key;
  }

  /**
   * Throws {@link InvalidKeyError} unless the org slug (and, for scope `"user"`, the user
   * slug) is 1-128 bytes of `[a-z0-9_-]`: no uppercase, spaces, dots, slashes or traversal.
   */
  validate(): void {
    if (this.scope !== "user" && this.scope !== "org") {
      throw new InvalidKeyError(`tenant scope must be "user" or "org", got ${JSON.stringify(this.scope)}`, {
        op: "tenants.key",
      });
    }
    checkSlug("orgId", this.orgId);
    if (this.scope === "user") checkSlug("userId", this.userId);
  }

  /**
   * Where the tenant's replicated objects live: `tenants/{org}/users/{user}/` or
   * `tenants/{org}/org/`, apart from uploads (`pub/`, `priv/`) and from every other tenant.
   */
  prefix(): string {
    return this.scope === "user" ? `tenants/${this.orgId}/users/${this.userId}/` : `tenants/${this.orgId}/org/`;
  }

  /** `{org}/users/{user}.db` or `{org}/org.db`: the single object of the layout before replication (migrated on first hydrate). */
  objectKey(): string {
    return this.scope === "user" ? `${this.orgId}/users/${this.userId}.db` : `${this.orgId}/org.db`;
  }

  /** Where the database lives in a local cache: the object key's layout under `cacheRoot`. */
  localPath(cacheRoot: string): string {
    return join(cacheRoot, this.objectKey());
  }

  /** `org/users/user` or `org/org`, for log lines and metric labels. */
  toString(): string {
    return this.scope === "user" ? `${this.orgId}/users/${this.userId}` : `${this.orgId}/org`;
  }

  /** True when both keys name the same database. */
  equals(other: TenantKey | TenantKeyInit): boolean {
    const o = TenantKey.from(other);
    return o.scope === this.scope && o.orgId === this.orgId && o.userId === this.userId;
  }
}

function checkSlug(field: string, value: unknown): void {
  if (typeof value !== "string" || value.length === 0) {
    throw new InvalidKeyError(`tenant ${field} must be a non-empty slug`, { op: "tenants.key" });
  }
  // Checked before the pattern so an attacker-sized value never reaches an error message.
  if (Buffer.byteLength(value) > MAX_SLUG_LENGTH) {
    throw new InvalidKeyError(`tenant ${field} is longer than ${MAX_SLUG_LENGTH} bytes`, { op: "tenants.key" });
  }
  if (!slugPattern.test(value)) {
    throw new InvalidKeyError(`tenant ${field} ${JSON.stringify(value)} may only contain [a-z0-9_-]`, {
      op: "tenants.key",
    });
  }
}
