import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { type ReplicaPosition, readPosition } from "./replica-position.js";
import { TenantKey } from "./tenant-key.js";

/** A tenant database file found in a cache directory. */
export interface CachedTenant {
  readonly key: TenantKey;
  readonly path: string;
  /** What the cache recorded about its replication; `undefined` when no (readable) position file exists. */
  readonly position: ReplicaPosition | undefined;
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

/**
 * True when a cached file may hold changes that were never published: it was not closed
 * cleanly, or a WAL is left next to it (a clean close removes it), or it is content of a
 * tenant that was never published.
 */
export async function mayHoldUnpublished(cached: CachedTenant): Promise<boolean> {
  const position = cached.position;
  if (position === undefined) return false;
  if (position.generation === null) return position.dirty;
  if (!position.closed) return true;
  try {
    return (await stat(`${cached.path}-wal`)).size > 0;
  } catch {
    return false;
  }
}

async function add(found: CachedTenant[], cacheRoot: string, relative: string): Promise<void> {
  const key = TenantKey.fromObjectKey(relative);
  if (key === undefined) return;
  const path = key.localPath(cacheRoot);
  found.push({ key, path, position: await readPosition(path) });
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
