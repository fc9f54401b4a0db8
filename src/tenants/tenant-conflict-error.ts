import { ConflictError, type StoreErrorOptions } from "../errors.js";
import type { TenantKey } from "./tenant-key.js";

/**
 * Another writer took the tenant: publishing this process's changes failed the manifest's
 * condition (or, at load, the cached copy held unpublished changes and the tenant had moved on
 * elsewhere). Writes waiting for durability fail with it and are not acknowledged; the
 * process stops acknowledging writes for the tenant, keeps the local copy as a conflict record
 * (`storeroom tenants conflicts`) once nobody uses it, and the next call hydrates the winner's
 * version. HTTP 409.
 */
export class TenantConflictError extends ConflictError {
  /** The tenant that conflicted. */
  readonly key: TenantKey;
  /** Where the local copy is kept (a SQLite file under `<cacheRoot>/.conflicts/`). */
  readonly keptAt: string;
  /** Id of the conflict record (`storeroom tenants conflicts restore ID --to FILE`). */
  readonly recordId: string;

  constructor(key: TenantKey, keptAt: string, recordId: string, options?: StoreErrorOptions) {
    super(
      `tenant ${key} was taken over by another writer; this process's unpublished changes are kept as conflict record ${recordId} (${keptAt})`,
      options,
    );
    this.key = key;
    this.keptAt = keptAt;
    this.recordId = recordId;
  }
}
