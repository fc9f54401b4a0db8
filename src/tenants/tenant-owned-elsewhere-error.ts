import { BusyError, type StoreErrorOptions } from "../errors.js";
import type { TenantKey } from "./tenant-key.js";

/**
 * Another live process holds the tenant's ownership lease, so this one must not load it
 * (a server forwards the request to `holder` at `address` instead). HTTP 503, code `BUSY`.
 */
export class TenantOwnedElsewhereError extends BusyError {
  readonly key: TenantKey;
  /** Id of the process holding the lease (its tenant cache's writer id). */
  readonly holder: string;
  /** Where the holder accepts forwarded requests (`http://host:port`), or `""` when it advertised none. */
  readonly address: string;
  /** When the holder's lease expires unless renewed, ms since the epoch. */
  readonly expiresAt: number;

  constructor(key: TenantKey, holder: string, address: string, expiresAt: number, options?: StoreErrorOptions) {
    super(`tenant ${key} is served by ${holder}${address === "" ? "" : ` (${address})`}`, options);
    this.key = key;
    this.holder = holder;
    this.address = address;
    this.expiresAt = expiresAt;
  }
}
