export type { CachedTenant } from "./cached-tenants.js";
export { type ConflictReason, type ConflictRecord, exportConflict, listConflicts } from "./conflict-records.js";
export * from "./gateway-identity.js";
export type { LogItem, Manifest, SnapshotEntry } from "./manifest.js";
export type { Durability, ReplicationCounters, ShipEvent } from "./replica-host.js";
export type { ReplicaPosition } from "./replica-position.js";
export {
  inspectTenant,
  listCachedTenants,
  listTenants,
  type TenantCatalogEntry,
  type TenantListOptions,
} from "./tenant-catalog.js";
export * from "./tenant-close-error.js";
export * from "./tenant-conflict-error.js";
export { TenantDatabase } from "./tenant-database.js";
export * from "./tenant-history.js";
export * from "./tenant-key.js";
export * from "./tenant-leases.js";
export * from "./tenant-owned-elsewhere-error.js";
export type { TenantLease, TenantOwnership } from "./tenant-ownership.js";
export * from "./tenant-store.js";
export * from "./tenant-store-options.js";
export * from "./tenant-store-results.js";
export { tenantsMigrations } from "./tenants-migrations.js";
export { readWriterId } from "./writer-id.js";

/**
 * Whether {@link TenantStore} publications are conditional (compare-and-swap on the tenant
 * manifest's etag). Always `true`: a store refuses to open on an object store that ignores
 * conditional writes unless told `unsafeNoCas`.
 */
export const CAS = true;
