import { type StoreErrorOptions, UploadFailedError } from "../errors.js";
import type { TenantKey } from "./tenant-key.js";

/** One tenant that {@link TenantStore.close} could not bring to object storage. */
export interface TenantFailure {
  readonly key: TenantKey;
  readonly error: unknown;
}

/**
 * `close()` could not upload every tenant. Each failed tenant's local file stays in the cache
 * and is adopted (and uploaded) by the next store opened on the same `cacheRoot`.
 */
export class TenantCloseError extends UploadFailedError {
  /** Every tenant that did not make it, with its error. */
  readonly failures: readonly TenantFailure[];

  constructor(flushed: number, total: number, failures: readonly TenantFailure[], options?: StoreErrorOptions) {
    const list = failures.map((f) => `${f.key} (${f.error instanceof Error ? f.error.message : String(f.error)})`);
    super(`flushed ${flushed}/${total} tenants, ${failures.length} failed: ${list.join("; ")}`, {
      ...options,
      cause: new AggregateError(
        failures.map((f) => f.error),
        "tenant upload failures",
      ),
    });
    this.failures = failures;
  }
}
