import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { type CacheState, readCacheState } from "./cache-state.js";
import { TenantKey } from "./tenant-key.js";

/** A tenant database file found in a cache directory. */
export interface CachedTenant {
  readonly key: TenantKey;
  readonly path: string;
  /** What the cache recorded about it; `undefined` when no (readable) state file exists. */
  readonly state: CacheState | undefined;
}

/** Tenant files under `cacheRoot` (skipping `.tmp`, `.conflicts` and anything not a tenant). */
export async function scanCache(cacheRoot: string): Promise<CachedTenant[]> {
  const found: CachedTenant[] = [];
  for (const org of await entries(cacheRoot)) {
    for (const name of await entries(join(cacheRoot, org))) {
      if (name === "users") {
        for (const file of await entries(join(cacheRoot, org, "users")))
          await add(found, cacheRoot, `${org}/users/${file}`);
      } else {
        await add(found, cacheRoot, `${org}/${name}`);
      }
    }
  }
  return found.sort((a, b) => (a.key.objectKey() < b.key.objectKey() ? -1 : 1));
}

async function add(found: CachedTenant[], cacheRoot: string, relative: string): Promise<void> {
  const key = TenantKey.fromObjectKey(relative);
  if (key === undefined) return;
  const path = key.localPath(cacheRoot);
  found.push({ key, path, state: await readCacheState(path) });
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => !name.startsWith("."));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
}
