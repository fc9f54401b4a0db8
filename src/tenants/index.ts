export * from "./gateway-identity.js";
export * from "./tenant-key.js";

/**
 * Whether {@link TenantStore} checkpoints are generation-checked (compare-and-swap on the
 * object's etag). Always `true` here; the seed shipped `false`, and services that need
 * generation-checked writes were told to refuse to boot until it flipped.
 */
export const CAS = true;
