import { readFile, rename, rm, writeFile } from "node:fs/promises";
import type { Manifest } from "./manifest.js";
import { sameCursor, type WalCursor } from "./wal-reader.js";

/**
 * What a local tenant file is, relative to object storage, kept next to it as
 * `<file>.replica` and replaced atomically after every published manifest (and before every
 * checkpoint and clean close). With the cache directory's writer id it lets a restarted
 * process recognise its own manifest and resume shipping exactly where it stood.
 */
export interface ReplicaPosition {
  /** Generation named by the last manifest this file derives from; `null`: never published. */
  readonly generation: string | null;
  /** Fencing epoch of that manifest. */
  readonly epoch: number;
  /** True when this cache's writer holds `epoch` (it published that manifest itself). */
  readonly owned: boolean;
  /** Last transaction that manifest names (0 when never published). */
  readonly txid: number;
  /** Etag of that manifest, `null` when none. */
  readonly manifestEtag: string | null;
  /**
   * Where the unpublished frames start: the database file plus this WAL generation up to the
   * cursor is the state after `txid`. `null`: the database file alone is (fresh hydration, new tenant).
   */
  readonly cursor: WalCursor | null;
  /** A checkpoint may have run with the WAL published up to `cursor`: a restarted WAL (next generation) holds only newer frames. */
  readonly checkpointed: boolean;
  /** The database was closed with everything published: unless the WAL still has `cursor`'s generation, the file alone is the state after `txid`. */
  readonly closed: boolean;
  /** Never published, and the file holds changes beyond schema set-up: it must be published, even after a crash. */
  readonly dirty: boolean;
}

/** Position of a tenant file that was never published. */
export const unpublished: ReplicaPosition = Object.freeze({
  generation: null,
  epoch: 0,
  owned: false,
  txid: 0,
  manifestEtag: null,
  cursor: null,
  checkpointed: false,
  closed: false,
  dirty: false,
});

/**
 * The position of a copy whose own writer published `manifest` (with etag `etag`) from it:
 * at the manifest's WAL position, keeping the checkpoint and clean-close marks of `previous`
 * when that is the same point.
 */
export function ownPosition(manifest: Manifest, etag: string, previous: ReplicaPosition): ReplicaPosition {
  const same = sameCursor(manifest.position, previous.cursor);
  return {
    generation: manifest.generation,
    epoch: manifest.epoch,
    owned: true,
    txid: manifest.txid,
    manifestEtag: etag,
    cursor: manifest.position,
    checkpointed: same && previous.checkpointed,
    closed: same && previous.closed,
    dirty: false,
  };
}

export function positionPath(dbPath: string): string {
  return `${dbPath}.replica`;
}

/** The recorded position, or `undefined` when there is none (or it is unreadable: the file is then of unknown origin). */
export async function readPosition(dbPath: string): Promise<ReplicaPosition | undefined> {
  let text: string;
  try {
    text = await readFile(positionPath(dbPath), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const p = JSON.parse(text) as ReplicaPosition;
    const valid =
      (p.generation === null || typeof p.generation === "string") &&
      Number.isSafeInteger(p.epoch) &&
      typeof p.owned === "boolean" &&
      Number.isSafeInteger(p.txid) &&
      (p.manifestEtag === null || typeof p.manifestEtag === "string") &&
      (p.cursor === null || (typeof p.cursor === "object" && Number.isSafeInteger(p.cursor.offset))) &&
      typeof p.checkpointed === "boolean" &&
      typeof p.closed === "boolean" &&
      typeof p.dirty === "boolean";
    return valid ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the position file atomically (temp file, rename). */
export async function writePosition(dbPath: string, position: ReplicaPosition): Promise<void> {
  const tmp = `${positionPath(dbPath)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(position), { mode: 0o600 });
  await rename(tmp, positionPath(dbPath));
}

/** Removes a local database with its WAL, shared-memory, position and legacy state files. */
export async function removeLocalDatabase(dbPath: string): Promise<void> {
  await Promise.all(
    [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, positionPath(dbPath), `${dbPath}.state`].map((p) =>
      rm(p, { force: true }),
    ),
  );
}
