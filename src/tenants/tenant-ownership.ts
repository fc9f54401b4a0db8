import type { TenantKey } from "./tenant-key.js";

/** One hold of a tenant's ownership lease, as {@link TenantOwnership.acquire} hands it out. */
export interface TenantLease {
  /**
   * The fencing epoch of this hold: strictly greater than every earlier holder's. The store
   * writes it into the tenant's manifest before it serves the tenant, so an earlier holder's
   * next publication fails its condition even if that holder has not noticed losing the lease.
   */
  readonly epoch: number;
  /**
   * True when the lease was taken from another holder whose lease expired without being
   * released (a crashed or paused process that may still try to publish).
   */
  readonly stolen: boolean;
}

/**
 * Who may write a tenant when several processes share one object store: a lease per tenant
 * with an expiry and a fencing epoch, kept outside the store (the server keeps it in its
 * control database, `TenantLeases`). {@link TenantStore} consults it before it hydrates a
 * tenant and gives the lease back when it closes the tenant. Without one (the default) the
 * store assumes it is the only process serving its tenants.
 */
export interface TenantOwnership {
  /**
   * Takes this process's lease on the tenant (or confirms the one it holds) and returns it.
   * Throws {@link TenantOwnedElsewhereError} when another live process holds it; other errors
   * (the lease store is unreachable) propagate and nothing is loaded.
   */
  acquire(key: TenantKey): Promise<TenantLease>;
  /**
   * Raises the epoch of a lease this process holds to at least `minEpoch` (the tenant's
   * manifest already names an epoch this high, e.g. written before leases were used) and
   * returns the new hold. Throws {@link TenantOwnedElsewhereError} when the lease was lost.
   */
  advance(key: TenantKey, lease: TenantLease, minEpoch: number): Promise<TenantLease>;
  /** The store closed the tenant (eviction, shutdown, a failed load): the lease may go. Never throws. */
  release(key: TenantKey, lease: TenantLease): Promise<void>;
}
