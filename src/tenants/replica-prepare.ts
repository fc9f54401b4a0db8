import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CorruptDatabaseError } from "../errors.js";
import type { ObjectStore } from "../objects/index.js";
import { keepConflict, planConflict } from "./conflict-records.js";
import type { ReplicaHost } from "./replica-host.js";
import { ReplicaObjects, type StoredManifest } from "./replica-objects.js";
import {
  ownPosition,
  type ReplicaPosition,
  readPosition,
  removeLocalDatabase,
  unpublished,
  writePosition,
} from "./replica-position.js";
import { restoreDatabase } from "./replica-restore.js";
import { isSqliteHeader } from "./snapshot-file.js";
import { TenantConflictError } from "./tenant-conflict-error.js";
import type { TenantKey } from "./tenant-key.js";
import { startCursor, TenantReplica } from "./tenant-replica.js";
import { WalFile } from "./wal-reader.js";

/** How a tenant's local file came to be, and what the replica starts from. */
export interface PreparedReplica {
  readonly objects: ReplicaObjects;
  readonly stored: StoredManifest | null;
  readonly position: ReplicaPosition;
  readonly hasContent: boolean;
  /** The local copy may hold committed changes no manifest names: publish them soon. */
  readonly pending: boolean;
  /** `cache`: the cached file was resumed; `object`: hydrated; `migrated`: published from the old layout; `new`: empty. */
  readonly source: "cache" | "object" | "migrated" | "new";
}

/** What {@link prepareReplica} needs besides the replica host. */
export interface PrepareContext {
  readonly host: ReplicaHost;
  readonly store: ObjectStore;
  readonly multipartBytes: number;
  /** A host whose `fenced` does nothing, for the throwaway replica that publishes a migration. */
  readonly quietHost: ReplicaHost;
}

type Verdict =
  | { readonly kind: "resume"; readonly position: ReplicaPosition; readonly hasContent: boolean }
  | { readonly kind: "diverged" }
  | { readonly kind: "stale" };

/**
 * Makes the tenant's local file right before it is opened. A cached file is resumed when the
 * stored manifest is the one it derives from, or one its own writer published after it last
 * recorded its position (a crash in between). A cached file with unpublished changes of a
 * tenant that moved on elsewhere is kept as a conflict record ({@link TenantConflictError});
 * a clean stale one is dropped. Otherwise the tenant is hydrated from its manifest, or
 * migrated from the old single-object layout, or starts empty (publishing nothing yet).
 */
export async function prepareReplica(ctx: PrepareContext, key: TenantKey): Promise<PreparedReplica> {
  const { host } = ctx;
  const path = key.localPath(host.cacheRoot);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const objects = new ReplicaObjects(ctx.store, key.prefix(), host.writer, ctx.multipartBytes);
  const stored = await objects.readManifest();
  const present = await exists(path);
  const position = present ? await readPosition(path) : undefined;
  if (present && position !== undefined) {
    const verdict = judge(position, stored, path, host.writer);
    if (verdict.kind === "resume") {
      return {
        objects,
        stored,
        position: verdict.position,
        hasContent: verdict.hasContent,
        pending: hasPending(verdict.position, path) || (stored === null && verdict.hasContent),
        source: "cache",
      };
    }
    if (verdict.kind === "diverged") throw await divergedCopy(host, key, path, position, stored);
  } else if (present) {
    const legacy = await readLegacyState(path);
    if (legacy !== undefined && stored === null) {
      const head = await ctx.store.head(key.objectKey());
      // The old layout's cached copy of the object that still stands (with any writes a crash left in it).
      if ((head?.etag ?? null) === legacy.etag) return migrate(ctx, key, objects, path, true);
    }
    if (legacy?.open === true) throw await divergedCopy(host, key, path, unpublished, stored);
  }
  await removeLocalDatabase(path);
  if (stored === null) {
    const object = await ctx.store.head(key.objectKey());
    if (object !== null) return migrate(ctx, key, objects, path, false);
    await writePosition(path, unpublished);
    return { objects, stored: null, position: unpublished, hasContent: false, pending: false, source: "new" };
  }
  return hydrate(host, objects, stored, path);
}

/** Restores the manifest's latest state into the cache (retrying once when history moved under it). */
async function hydrate(
  host: ReplicaHost,
  objects: ReplicaObjects,
  first: StoredManifest,
  path: string,
): Promise<PreparedReplica> {
  await mkdir(host.tempDir, { recursive: true, mode: 0o700 });
  const started = performance.now();
  let stored = first;
  for (let attempt = 1; ; attempt++) {
    const tmp = join(host.tempDir, `${randomUUID()}.restore`);
    try {
      const restored = await restoreDatabase(objects, stored.manifest, stored.manifest.txid, tmp);
      await rename(tmp, path);
      host.counters.restores += 1;
      host.counters.restoreMs += performance.now() - started;
      host.counters.restoreBytes += restored.bytes;
      break;
    } catch (err) {
      await rm(tmp, { force: true });
      // Garbage collection may have removed history an older manifest named; a newer one does not need it.
      const latest = attempt === 1 && err instanceof CorruptDatabaseError ? await objects.readManifest() : null;
      if (latest === null || latest.etag === stored.etag) throw err;
      stored = latest;
    }
  }
  const m = stored.manifest;
  const position: ReplicaPosition = {
    generation: m.generation,
    epoch: m.epoch,
    owned: m.writer === host.writer,
    txid: m.txid,
    manifestEtag: stored.etag,
    cursor: null,
    checkpointed: false,
    closed: false,
    dirty: false,
  };
  await writePosition(path, position);
  return { objects, stored, position, hasContent: true, pending: false, source: "object" };
}

function judge(position: ReplicaPosition, stored: StoredManifest | null, path: string, writer: string): Verdict {
  if (stored === null) {
    // Never published: resume. Published once but the manifest is gone (an emptied store): republish what is here.
    return { kind: "resume", position, hasContent: position.generation === null ? position.dirty : true };
  }
  if (position.manifestEtag === stored.etag) return { kind: "resume", position, hasContent: true };
  const m = stored.manifest;
  if (m.writer === writer && m.epoch >= position.epoch) {
    // Published by this cache's writer after it last recorded its position (killed in between).
    return { kind: "resume", hasContent: true, position: ownPosition(m, stored.etag, position) };
  }
  return position.dirty || hasPending(position, path) ? { kind: "diverged" } : { kind: "stale" };
}

/** True when the local WAL holds committed transactions after the recorded position, or they can no longer be told apart. */
function hasPending(position: ReplicaPosition, path: string): boolean {
  const wal = WalFile.open(`${path}-wal`);
  try {
    const start = startCursor(position, wal);
    if (start === "unreadable") return true;
    return start !== "none" && wal !== undefined && wal.hasCommitsAfter(start);
  } finally {
    wal?.close();
  }
}

async function divergedCopy(
  host: ReplicaHost,
  key: TenantKey,
  path: string,
  position: ReplicaPosition,
  stored: StoredManifest | null,
): Promise<TenantConflictError> {
  const now = host.clock.now();
  const planned = planConflict(host.cacheRoot, now);
  let unpublishedTransactions: number | null = null;
  const wal = WalFile.open(`${path}-wal`);
  try {
    const start = startCursor(position, wal);
    if (start === "none") unpublishedTransactions = 0;
    else if (start !== "unreadable" && wal !== undefined)
      unpublishedTransactions = wal.commitsAfter(start).transactions;
  } finally {
    wal?.close();
  }
  await keepConflict(host.cacheRoot, key, path, planned, now, {
    reason: "diverged",
    writer: host.writer,
    local: { generation: position.generation, epoch: position.epoch, txid: position.txid },
    unpublishedTransactions,
    remote: summary(stored),
  });
  host.fenced(key);
  return new TenantConflictError(key, planned.keptAt, planned.id, { op: "tenants.hydrate" });
}

/** The winner's manifest as a conflict record shows it. */
export function summary(
  stored: StoredManifest | null,
): { generation: string; epoch: number; writer: string; txid: number } | null {
  if (stored === null) return null;
  const m = stored.manifest;
  return { generation: m.generation, epoch: m.epoch, writer: m.writer, txid: m.txid };
}

/**
 * Publishes a tenant of the old layout (`<org>/users/<user>.db`) as the first generation of
 * its manifest: the cached copy (`adopt`) or the downloaded object becomes snapshot 0 (and a
 * crashed copy's WAL its first segment); the old object is deleted once the manifest stands.
 * Losing the race to another process that migrated it first hydrates that one.
 */
async function migrate(
  ctx: PrepareContext,
  key: TenantKey,
  objects: ReplicaObjects,
  path: string,
  adopt: boolean,
): Promise<PreparedReplica> {
  if (!adopt && !(await download(ctx, key, path))) {
    // The old object went away meanwhile: another process migrated it (and its manifest now stands).
    const migrated = await objects.readManifest();
    if (migrated !== null) return hydrate(ctx.host, objects, migrated, path);
    await writePosition(path, unpublished);
    return { objects, stored: null, position: unpublished, hasContent: false, pending: false, source: "new" };
  }
  const replica = new TenantReplica(ctx.quietHost, key, path, objects, null, unpublished, true);
  try {
    await replica.flush();
  } catch (err) {
    if (replica.conflict === undefined) throw err;
    await removeLocalDatabase(path);
    const winner = await objects.readManifest();
    if (winner === null) throw err;
    return hydrate(ctx.host, objects, winner, path);
  }
  await ctx.store.delete(key.objectKey());
  await rm(`${path}.state`, { force: true });
  const stored = { manifest: replica.manifest, etag: replica.etag } as StoredManifest;
  return { objects, stored, position: replica.position, hasContent: true, pending: false, source: "migrated" };
}

/** Downloads the old-layout object into `path`; false when it is gone. Not a SQLite file -> CorruptDatabaseError. */
async function download(ctx: PrepareContext, key: TenantKey, path: string): Promise<boolean> {
  const object = await ctx.store.get(key.objectKey());
  if (object === null) return false;
  await mkdir(ctx.host.tempDir, { recursive: true, mode: 0o700 });
  const tmp = join(ctx.host.tempDir, `${randomUUID()}.download`);
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
    await rename(tmp, path);
    return true;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The cache state file of the old layout (`<file>.state`: the object etag it derived from, whether a store had it open). */
async function readLegacyState(path: string): Promise<{ etag: string | null; open: boolean } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(`${path}.state`, "utf8")) as { etag?: unknown; open?: unknown };
    if (typeof parsed.open !== "boolean" || !(parsed.etag === null || typeof parsed.etag === "string"))
      return undefined;
    return { etag: parsed.etag, open: parsed.open };
  } catch {
    return undefined;
  }
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
