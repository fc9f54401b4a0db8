import { InvalidArgumentError } from "../errors.js";
import { functionOption } from "../internal/option-checks.js";
import type { TenantHandle } from "./tenant-handle.js";
import { TenantKey, type TenantKeyInit } from "./tenant-key.js";
import type { TenantStoreOptions } from "./tenant-store-options.js";

// A function, so TypeScript does not narrow `state` across the awaits in #retire.
export function isClosed(handle: TenantHandle): boolean {
  return handle.state === "closed";
}

export function validKey(key: TenantKey | TenantKeyInit): TenantKey {
  const valid = TenantKey.from(key);
  valid.validate();
  return valid;
}

export function count(value: number, name: string, min: number): number {
  if (!Number.isFinite(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be a number >= ${min}, got ${value}`, {
      op: "tenants.open",
    });
  }
  return value;
}

export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Options of earlier versions that have no counterpart in continuous replication, with what replaced them. */
const REMOVED_OPTIONS: Readonly<Record<string, string>> = {
  checkpointWrites: "publication is continuous (see syncIntervalMs and durability)",
  connect: "tenant databases are opened by the store (walAutocheckpoint must be off for replication)",
};

/**
 * Resolves the deprecated option aliases of {@link TenantStoreOptions} (`onReapFailure`,
 * `checkpointIntervalMs`) and refuses removed options, naming them: a caller's setting is never
 * dropped silently.
 */
export function resolveDeprecatedOptions(options: TenantStoreOptions): {
  syncIntervalMs: number | undefined;
  onError: ((error: unknown, key?: TenantKey) => void) | undefined;
} {
  for (const [name, why] of Object.entries(REMOVED_OPTIONS)) {
    if ((options as unknown as Record<string, unknown>)[name] !== undefined) {
      throw new InvalidArgumentError(`${name} is no longer supported: ${why}`, { op: "tenants.open" });
    }
  }
  const { onError, onReapFailure, syncIntervalMs, checkpointIntervalMs } = options;
  if (onError !== undefined && onReapFailure !== undefined) {
    throw new InvalidArgumentError("onError and its deprecated alias onReapFailure were both given", {
      op: "tenants.open",
    });
  }
  if (syncIntervalMs !== undefined && checkpointIntervalMs !== undefined) {
    throw new InvalidArgumentError("syncIntervalMs and its deprecated alias checkpointIntervalMs were both given", {
      op: "tenants.open",
    });
  }
  functionOption(onError, "onError", "tenants.open");
  functionOption(onReapFailure, "onReapFailure", "tenants.open");
  functionOption(options.onShipped, "onShipped", "tenants.open");
  return {
    syncIntervalMs: syncIntervalMs ?? checkpointIntervalMs,
    onError:
      onError ??
      (onReapFailure === undefined
        ? undefined
        : (error, key) => {
            if (key !== undefined) onReapFailure(key, error);
            else process.emitWarning(`tenant store: ${error instanceof Error ? error.message : String(error)}`);
          }),
  };
}
