import type { ObjectInfo, ObjectStore } from "../objects/index.js";
import { type CachedTenant, mayHoldUnpublished, scanCache } from "./cached-tenants.js";
import { MANIFEST_NAME } from "./replica-layout.js";
import { validKey } from "./store-helpers.js";
import { TenantKey, type TenantKeyInit } from "./tenant-key.js";
import type { TenantListing } from "./tenant-store-results.js";

/** What object storage and (optionally) a cache directory hold for one tenant, read without a store. */
export interface TenantCatalogEntry {
  readonly key: TenantKey;
  /** Key of the tenant's manifest. */
  readonly manifestKey: string;
  /** The manifest object as stored now, or `null` when the tenant was never published. */
  readonly manifest: ObjectInfo | null;
  /** Where the cache keeps the tenant's file (`null` without a cache directory). */
  readonly localPath: string | null;
  /** The cached copy and its recorded replication position (`null` when not cached or no cache given). */
  readonly cached: CachedTenant | null;
  /** The cached copy may hold writes object storage lacks (`tenants checkpoint` publishes them). */
  readonly unpublished: boolean;
}

/** Options of {@link listTenants} and `TenantStore.list`. */
export interface TenantListOptions {
  /** Only this org's tenants (a slug; an invalid one is an `InvalidKeyError`). Default every org. */
  orgId?: string;
}

/**
 * Every tenant in object storage (optionally of one org), ordered by key: replicated tenants
 * (a manifest under `tenants/`) and tenants still in the old single-object layout. Reads only:
 * no store, no cache lock, so it runs beside a live service.
 */
export async function listTenants(objects: ObjectStore, options: TenantListOptions = {}): Promise<TenantListing[]> {
  if (options.orgId !== undefined) TenantKey.org(options.orgId).validate();
  const found = new Map<string, TenantListing & { manifest: boolean }>();
  const sizes = new Map<string, number>();
  await walk(objects, options.orgId === undefined ? "tenants/" : `tenants/${options.orgId}/`, (object) => {
    const cut = object.key.endsWith(`/${MANIFEST_NAME}`) ? object.key.length - MANIFEST_NAME.length : -1;
    const prefix = cut > 0 ? object.key.slice(0, cut) : tenantPrefixOf(object.key);
    if (prefix === undefined) return;
    sizes.set(prefix, (sizes.get(prefix) ?? 0) + object.size);
    const key = cut > 0 ? TenantKey.fromPrefix(prefix) : undefined;
    if (key !== undefined) {
      found.set(key.toString(), {
        key,
        layout: "replicated",
        size: 0,
        etag: object.etag,
        lastModified: object.lastModified,
        manifest: true,
      });
    }
  });
  await walk(objects, options.orgId === undefined ? "" : `${options.orgId}/`, (object) => {
    const key = TenantKey.fromObjectKey(object.key);
    if (key === undefined || found.has(key.toString())) return;
    found.set(key.toString(), {
      key,
      layout: "legacy",
      size: object.size,
      etag: object.etag,
      lastModified: object.lastModified,
      manifest: false,
    });
  });
  return [...found.values()]
    .map(({ manifest, ...listing }) =>
      manifest ? { ...listing, size: sizes.get(listing.key.prefix()) ?? 0 } : listing,
    )
    .sort((a, b) => (a.key.toString() < b.key.toString() ? -1 : 1));
}

/**
 * Tenant files in a cache directory with their recorded replication positions, read without
 * taking the cache lock (a live service may be using it; positions are written atomically).
 */
export function listCachedTenants(cacheRoot: string): Promise<CachedTenant[]> {
  return scanCache(cacheRoot);
}

/** What object storage and, given `cacheRoot`, the cache hold for `key`. Reads only, like {@link listTenants}. */
export async function inspectTenant(
  objects: ObjectStore,
  key: TenantKey | TenantKeyInit,
  cacheRoot?: string,
): Promise<TenantCatalogEntry> {
  const valid = validKey(key);
  const manifestKey = valid.prefix() + MANIFEST_NAME;
  const cached = cacheRoot === undefined ? undefined : (await scanCache(cacheRoot)).find((c) => c.key.equals(valid));
  return {
    key: valid,
    manifestKey,
    manifest: await objects.head(manifestKey),
    localPath: cacheRoot === undefined ? null : valid.localPath(cacheRoot),
    cached: cached ?? null,
    unpublished: cached === undefined ? false : await mayHoldUnpublished(cached),
  };
}

async function walk(
  objects: ObjectStore,
  prefix: string,
  visit: (object: { key: string; size: number; etag: string; lastModified: number }) => void,
): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await objects.list(prefix, cursor === undefined ? {} : { cursor });
    for (const object of page.objects) visit(object);
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** `tenants/<org>/users/<user>/` or `tenants/<org>/org/` of an object key under it. */
function tenantPrefixOf(objectKey: string): string | undefined {
  const parts = objectKey.split("/");
  if (parts[0] !== "tenants" || parts.length < 4) return undefined;
  if (parts[2] === "users" && parts.length >= 5) return `${parts.slice(0, 4).join("/")}/`;
  if (parts[2] === "org") return `${parts.slice(0, 3).join("/")}/`;
  return undefined;
}
