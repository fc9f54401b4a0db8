import { ConflictError, type StoreErrorOptions } from "../errors.js";
import type { TenantKey } from "./tenant-key.js";

/**
 * A checkpoint lost the generation check: another process wrote the tenant's object since this
 * process hydrated or last uploaded it. The local copy was not uploaded and not dropped: it is
 * moved to `keptAt` (under `<cacheRoot>/.conflicts/`) once nobody holds the tenant, and the
 * next `get` hydrates the winner's version.
 */
export class TenantConflictError extends ConflictError {
  /** The tenant whose checkpoint lost. */
  readonly key: TenantKey;
  /** Where the local copy is kept (a complete SQLite file). */
  readonly keptAt: string;

  constructor(key: TenantKey, keptAt: string, options?: StoreErrorOptions) {
    super(
      `tenant ${key} changed in object storage since this process loaded it; local copy kept at ${keptAt}`,
      options,
    );
    this.key = key;
    this.keptAt = keptAt;
  }
}
