import { randomUUID } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CorruptDatabaseError } from "../errors.js";
import type { ObjectStore } from "../objects/object-store.js";
import { readCacheState, removeLocalDatabase, statePath, writeCacheState } from "./cache-state.js";
import { TenantConflictError } from "./tenant-conflict-error.js";
import type { TenantKey } from "./tenant-key.js";

/** The first 16 bytes of every SQLite database file. */
const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

/** How a tenant's local file came to be. */
export interface LocalCopy {
  /** Generation of the object the file derives from; `null` when no object exists yet. */
  readonly etag: string | null;
  /** `"object"`: downloaded; `"new"`: no object, empty database; `"cache"`: a file already in the cache was adopted. */
  readonly source: "object" | "new" | "cache";
  /** True when the adopted file may hold writes that never reached object storage (its store crashed). */
  readonly unflushed: boolean;
}

/** Where the cache keeps temporary downloads and snapshots (same filesystem, so renames are atomic). */
export function tempDir(cacheRoot: string): string {
  return join(cacheRoot, ".tmp");
}

/** Where a local copy that lost a generation check is kept. Slugs cannot contain dots, so no tenant can collide. */
export function conflictPath(cacheRoot: string, key: TenantKey, now: number): string {
  return join(cacheRoot, ".conflicts", `${key.objectKey().replace(/\.db$/, "")}-${now}-${randomUUID().slice(0, 8)}.db`);
}

/** True for an empty buffer or one that starts with the SQLite header. */
export function isSqliteHeader(header: Uint8Array): boolean {
  return header.byteLength === 0 || (header.byteLength >= 16 && SQLITE_MAGIC.equals(header.subarray(0, 16)));
}

/**
 * Makes sure `path` holds the tenant's database before it is opened. A file already in the
 * cache is adopted when it derives from the object's current generation, which is how writes
 * of a crashed process (still in the file and its WAL) survive a restart. A crashed copy whose
 * object moved on is kept aside and reported ({@link TenantConflictError}); a clean stale copy
 * is replaced. Otherwise the object is downloaded to a temp file, fsynced, checked for the
 * SQLite header ({@link CorruptDatabaseError}, object untouched) and renamed into place.
 */
export async function prepareLocalCopy(
  store: ObjectStore,
  key: TenantKey,
  cacheRoot: string,
  now: number,
): Promise<LocalCopy> {
  const path = key.localPath(cacheRoot);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const state = await readCacheState(path);
  const present = await exists(path);
  if (present && state !== undefined) {
    const head = await store.head(key.objectKey());
    const remote = head?.etag ?? null;
    if (remote === state.etag) return { etag: remote, source: "cache", unflushed: state.open };
    if (state.open) {
      const keptAt = conflictPath(cacheRoot, key, now);
      await moveAside(path, keptAt);
      throw new TenantConflictError(key, keptAt, { op: "tenants.hydrate" });
    }
  }
  if (present || state !== undefined) await removeLocalDatabase(path);
  return download(store, key, path, cacheRoot);
}

async function download(store: ObjectStore, key: TenantKey, path: string, cacheRoot: string): Promise<LocalCopy> {
  const object = await store.get(key.objectKey());
  if (object === null) {
    await writeCacheState(path, { etag: null, open: true });
    return { etag: null, source: "new", unflushed: false };
  }
  await mkdir(tempDir(cacheRoot), { recursive: true, mode: 0o700 });
  const tmp = join(tempDir(cacheRoot), `${randomUUID()}.download`);
  try {
    const file = await open(tmp, "wx", 0o600);
    let header = Buffer.alloc(0);
    try {
      for await (const chunk of object.body as AsyncIterable<Buffer>) {
        if (header.byteLength < 16) {
          header = Buffer.concat([header, chunk.subarray(0, 16 - header.byteLength)]);
          if (header.byteLength === 16 && !isSqliteHeader(header)) {
            object.body.destroy();
            break;
          }
        }
        await file.write(chunk);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    if (!isSqliteHeader(header)) {
      throw new CorruptDatabaseError(`object ${key.objectKey()} is not a SQLite database (header mismatch)`, {
        op: "tenants.hydrate",
      });
    }
    // No directory fsync: a rename lost to a power cut leaves no file, and the next get downloads again.
    await rename(tmp, path);
    await writeCacheState(path, { etag: object.etag, open: true });
    return { etag: object.etag, source: "object", unflushed: false };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Moves a closed local database (and any WAL left by a crash) to `keptAt`, dropping its cache state. */
export async function moveAside(path: string, keptAt: string): Promise<void> {
  await mkdir(dirname(keptAt), { recursive: true, mode: 0o700 });
  await rename(path, keptAt);
  try {
    await rename(`${path}-wal`, `${keptAt}-wal`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await Promise.all([rm(`${path}-shm`, { force: true }), rm(statePath(path), { force: true })]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
