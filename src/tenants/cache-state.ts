import { readFile, rename, rm, writeFile } from "node:fs/promises";

/**
 * What the cache knows about a local tenant file, kept next to it as `<file>.state`:
 * the object generation it derives from (`null`: never uploaded) and whether a store had it
 * open (`open: true` after a crash means it may hold writes that never reached object storage).
 */
export interface CacheState {
  readonly etag: string | null;
  readonly open: boolean;
}

export function statePath(dbPath: string): string {
  return `${dbPath}.state`;
}

export async function readCacheState(dbPath: string): Promise<CacheState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(dbPath), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<CacheState>;
    if (typeof parsed.open !== "boolean" || !(parsed.etag === null || typeof parsed.etag === "string"))
      return undefined;
    return { etag: parsed.etag, open: parsed.open };
  } catch {
    // A torn state file carries no information; the local file is then treated as unknown.
    return undefined;
  }
}

/** Replaces the state file atomically (write a temp file, rename over). */
export async function writeCacheState(dbPath: string, state: CacheState): Promise<void> {
  const tmp = `${statePath(dbPath)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
  await rename(tmp, statePath(dbPath));
}

/** Removes a local database with its WAL, shared-memory and state files. */
export async function removeLocalDatabase(dbPath: string): Promise<void> {
  await Promise.all([dbPath, `${dbPath}-wal`, `${dbPath}-shm`, statePath(dbPath)].map((p) => rm(p, { force: true })));
}
