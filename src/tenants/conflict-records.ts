import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import { openSqlite } from "../sql/index.js";
import { positionPath } from "./replica-position.js";
import type { TenantKey } from "./tenant-key.js";

/** Why a local copy became a conflict record. */
export type ConflictReason =
  /** Publishing a manifest failed its condition: another writer took the tenant while this one held it. */
  | "fenced"
  /** At load, the cached copy held changes that were never published and the tenant had moved on elsewhere. */
  | "diverged";

/**
 * A local copy of a tenant that lost to another writer, kept with what is known about both
 * sides. `unpublishedTransactions` counts the local transactions no manifest names (the writes
 * the served tenant does not have); `null` when they could no longer be counted.
 */
export interface ConflictRecord {
  readonly id: string;
  readonly tenant: string;
  readonly reason: ConflictReason;
  /** When it was recorded, ms since the epoch. */
  readonly time: number;
  /** Path of the kept SQLite file. */
  readonly path: string;
  readonly writer: string;
  readonly local: { readonly generation: string | null; readonly epoch: number; readonly txid: number };
  readonly unpublishedTransactions: number | null;
  /** The manifest that won, when it could be read. */
  readonly remote: {
    readonly generation: string;
    readonly epoch: number;
    readonly writer: string;
    readonly txid: number;
  } | null;
}

/** What is known when a conflict is recorded (the path and id are chosen here). */
export type ConflictDetails = Omit<ConflictRecord, "id" | "path" | "tenant" | "time">;

const idPattern = /^[0-9]{13}-[0-9a-f]{8}$/;

export function conflictsDir(cacheRoot: string): string {
  return join(cacheRoot, ".conflicts");
}

/** A fresh record id and the path its copy will have: ids sort by time. */
export function planConflict(cacheRoot: string, now: number): { id: string; keptAt: string } {
  const id = `${String(Math.floor(now)).padStart(13, "0")}-${randomBytes(4).toString("hex")}`;
  return { id, keptAt: join(conflictsDir(cacheRoot), `${id}.db`) };
}

/**
 * Moves a closed tenant file (with any WAL a crash left) to the record's place and writes the
 * record next to it (`<id>.json`), so the copy is never served again but never lost.
 */
export async function keepConflict(
  cacheRoot: string,
  key: TenantKey,
  dbPath: string,
  planned: { id: string; keptAt: string },
  now: number,
  details: ConflictDetails,
): Promise<ConflictRecord> {
  await mkdir(conflictsDir(cacheRoot), { recursive: true, mode: 0o700 });
  await rename(dbPath, planned.keptAt);
  try {
    await rename(`${dbPath}-wal`, `${planned.keptAt}-wal`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await Promise.all([rm(`${dbPath}-shm`, { force: true }), rm(positionPath(dbPath), { force: true })]);
  const record: ConflictRecord = {
    id: planned.id,
    tenant: key.toString(),
    time: now,
    path: planned.keptAt,
    ...details,
  };
  await writeFile(join(conflictsDir(cacheRoot), `${planned.id}.json`), JSON.stringify(record, null, 2), {
    mode: 0o600,
  });
  return record;
}

/** Every conflict record in the cache, oldest first. Reads only: safe beside a running store. */
export async function listConflicts(cacheRoot: string): Promise<ConflictRecord[]> {
  let names: string[];
  try {
    names = await readdir(conflictsDir(cacheRoot));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const records: ConflictRecord[] = [];
  for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
    try {
      records.push(JSON.parse(await readFile(join(conflictsDir(cacheRoot), name), "utf8")) as ConflictRecord);
    } catch {
      // A record torn by a crash while it was written: its copy is still there, listed by nothing.
    }
  }
  return records;
}

/**
 * Writes a consistent copy of a record's database to `to` (which must not exist): the kept
 * file with any WAL folded in. {@link NotFoundError} for an unknown id.
 */
export async function exportConflict(cacheRoot: string, id: string, to: string): Promise<ConflictRecord> {
  if (!idPattern.test(id))
    throw new InvalidArgumentError(`not a conflict record id: ${id}`, { op: "tenants.conflicts" });
  const record = (await listConflicts(cacheRoot)).find((r) => r.id === id);
  if (record === undefined)
    throw new NotFoundError(`no conflict record ${id} in ${cacheRoot}`, { op: "tenants.conflicts" });
  await stat(record.path);
  const db = await openSqlite(record.path, { readConnection: false });
  try {
    await db.snapshotTo(to);
  } finally {
    await db.close();
  }
  return record;
}
