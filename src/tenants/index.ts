export type { CacheState } from "./cache-state.js";
export type { CachedTenant } from "./cached-tenants.js";
export * from "./gateway-identity.js";
export * from "./tenant-close-error.js";
export * from "./tenant-conflict-error.js";
export { TenantDatabase } from "./tenant-database.js";
export * from "./tenant-key.js";
export * from "./tenant-store.js";
export * from "./tenant-store-options.js";
export * from "./tenant-store-results.js";

/**
 * Whether {@link TenantStore} checkpoints are generation-checked (compare-and-swap on the
 * object's etag). Always `true`: services that need generation-checked writes can check it
 * at boot and refuse to start without it.
 */
export const CAS = true;
