import { InvalidArgumentError } from "../errors.js";
import type { TenantHandle } from "./tenant-handle.js";
import { TenantKey, type TenantKeyInit } from "./tenant-key.js";

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
