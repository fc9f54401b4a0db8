import { randomUUID } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Clock, systemClock } from "../clock.js";
import { ConflictError, InvalidArgumentError, NotFoundError } from "../errors.js";
import { nonEmptyString } from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import { type LogItem, MANIFEST_FORMAT, type Manifest, type SnapshotEntry } from "./manifest.js";
import { retain, segmentsIn } from "./manifest-log.js";
import { isConflict, ReplicaObjects, type StoredManifest } from "./replica-objects.js";
import { type RestoredDatabase, restoreDatabase } from "./replica-restore.js";
import { writeSnapshotFile } from "./snapshot-file.js";
import { TenantKey, type TenantKeyInit } from "./tenant-key.js";
import { randomId } from "./tenant-replica.js";

/** A tenant's retained history, as its manifest names it. */
export interface TenantHistory {
  readonly key: TenantKey;
  readonly manifestEtag: string;
  readonly generation: string;
  readonly epoch: number;
  readonly writer: string;
  /** Last transaction published, and when the manifest was written. */
  readonly txid: number;
  readonly time: number;
  readonly pageSize: number;
  readonly pages: number;
  /** Snapshots inside retention, oldest first. */
  readonly snapshots: readonly SnapshotEntry[];
  /** Every segment inside retention (packs opened), oldest first. */
  readonly segments: readonly LogItem[];
}

/** Where to restore: a transaction id, or a time (the last transaction published at or before it). */
export type RestorePoint = number | Date;

/** Options of {@link restoreAsNewGeneration}. */
export interface NewGenerationOptions {
  /** Directory for the rebuilt database and snapshot while they are prepared. Default the OS temp directory. */
  tempDir?: string;
  /** History the new manifest keeps, like `TenantStoreOptions.retentionMs`. Default 86400000 (24 h). */
  retentionMs?: number;
  /** Time of the new snapshot and of retention. Default the system clock. */
  clock?: Clock;
}

const UNMANAGED_WRITER = "restore";

/** Reads a tenant's history (`null` when it has no manifest). */
export async function tenantHistory(store: ObjectStore, key: TenantKey | TenantKeyInit): Promise<TenantHistory | null> {
  const valid = checked(key);
  const objects = new ReplicaObjects(store, valid.prefix(), UNMANAGED_WRITER, Number.POSITIVE_INFINITY);
  const stored = await objects.readManifest();
  if (stored === null) return null;
  const m = stored.manifest;
  const first = m.snapshots[0]?.txid ?? 0;
  const segments = await segmentsIn(m.log, first + 1, m.txid, (i) => objects.readPack(i));
  return {
    key: valid,
    manifestEtag: stored.etag,
    generation: m.generation,
    epoch: m.epoch,
    writer: m.writer,
    txid: m.txid,
    time: m.time,
    pageSize: m.pageSize,
    pages: m.pages,
    snapshots: m.snapshots,
    segments,
  };
}

/**
 * Rebuilds the tenant as it was at `at` into the new file `to`, from object storage only (no
 * cache, safe beside a running server). {@link NotFoundError} when the tenant has no manifest,
 * {@link InvalidArgumentError} when `at` is outside retention, {@link CorruptDatabaseError}
 * when history is damaged.
 */
export async function restoreTenant(
  store: ObjectStore,
  key: TenantKey | TenantKeyInit,
  at: RestorePoint,
  to: string,
): Promise<RestoredDatabase> {
  const valid = checked(key);
  const objects = new ReplicaObjects(store, valid.prefix(), UNMANAGED_WRITER, Number.POSITIVE_INFINITY);
  const stored = await manifestOf(objects, valid);
  if (await exists(to)) throw new InvalidArgumentError(`${to} already exists`, { op: "tenants.restore" });
  const txid = await resolvePoint(objects, stored.manifest, at);
  await mkdir(dirname(to), { recursive: true });
  return restoreDatabase(objects, stored.manifest, txid, to);
}

/** What {@link restoreAsNewGeneration} published. */
export interface NewGeneration {
  /** The transaction restored. */
  readonly restoredTxid: number;
  /** The transaction id the restored state now has (one past the last one before), its generation and manifest etag. */
  readonly txid: number;
  readonly generation: string;
  readonly etag: string;
}

/**
 * Makes the tenant's state at `at` its current state: the restored database is published as
 * a snapshot starting a new generation, one transaction after the last one, and the manifest
 * moves to it conditionally (a new fencing epoch, so a process still writing the old state is
 * fenced: its unpublished writes become a conflict record). Older history stays restorable
 * within retention. {@link ConflictError} when the tenant changed meanwhile (run it again).
 */
export async function restoreAsNewGeneration(
  store: ObjectStore,
  key: TenantKey | TenantKeyInit,
  at: RestorePoint,
  options: NewGenerationOptions = {},
): Promise<NewGeneration> {
  const valid = checked(key);
  const op = "tenants.restore";
  const retentionMs = options.retentionMs ?? 24 * 3_600_000;
  if (typeof retentionMs !== "number" || !Number.isFinite(retentionMs) || retentionMs < 0) {
    throw new InvalidArgumentError(`retentionMs must be a non-negative number, got ${String(retentionMs)}`, { op });
  }
  const dir = options.tempDir === undefined ? tmpdir() : nonEmptyString(options.tempDir, "tempDir", op);
  const writer = randomId();
  const objects = new ReplicaObjects(store, valid.prefix(), writer, Number.POSITIVE_INFINITY);
  const stored = await manifestOf(objects, valid);
  const m = stored.manifest;
  const restoredTxid = await resolvePoint(objects, m, at);
  await mkdir(dir, { recursive: true });
  const db = join(dir, `${randomUUID()}.restore`);
  const image = join(dir, `${randomUUID()}.snapshot`);
  try {
    await restoreDatabase(objects, m, restoredTxid, db);
    const info = await writeSnapshotFile(db, undefined, null, image);
    const now = (options.clock ?? systemClock).now();
    const generation = randomId();
    const txid = m.txid + 1;
    const entry = await objects.writeSnapshot(image, info, txid, generation, now);
    const kept = retain([...m.snapshots, entry], m.log, now - retentionMs);
    const next: Manifest = {
      format: MANIFEST_FORMAT,
      generation,
      epoch: m.epoch + 1,
      writer,
      pageSize: info.pageSize,
      txid,
      pages: info.pages,
      time: now,
      position: null,
      snapshots: kept.snapshots,
      log: kept.log,
      sinceSnapshot: { bytes: 0, count: 0 },
    };
    try {
      const { etag } = await objects.writeManifest(next, stored.etag);
      return { restoredTxid, txid, generation, etag };
    } catch (err) {
      if (!isConflict(err)) throw err;
      throw new ConflictError(`tenant ${valid} changed while it was being restored; run the restore again`, {
        op: "tenants.restore",
        cause: err,
      });
    }
  } finally {
    await Promise.all([rm(db, { force: true }), rm(image, { force: true })]);
  }
}

/** The transaction a restore point names: a transaction id as is, a time as the last transaction published by then. */
export async function resolvePoint(objects: ReplicaObjects, m: Manifest, at: RestorePoint): Promise<number> {
  if (typeof at === "number") {
    if (!Number.isSafeInteger(at) || at < 0) {
      throw new InvalidArgumentError(`a restore point is a transaction id >= 0, got ${at}`, { op: "tenants.restore" });
    }
    return at;
  }
  const time = at.getTime();
  if (!Number.isFinite(time)) throw new InvalidArgumentError("invalid restore time", { op: "tenants.restore" });
  let best = -1;
  for (const s of m.snapshots) if (s.time <= time) best = Math.max(best, s.txid);
  let items: readonly LogItem[] = m.log;
  for (;;) {
    const after = items.findIndex((i) => i.time > time);
    if (after === -1) {
      const last = items[items.length - 1];
      if (last !== undefined) best = Math.max(best, last.last);
      break;
    }
    if (after > 0) best = Math.max(best, (items[after - 1] as LogItem).last);
    const item = items[after] as LogItem;
    if (item.level === 0) break;
    items = await objects.readPack(item);
  }
  if (best < 0) {
    throw new InvalidArgumentError(`${at.toISOString()} is before the oldest retained state of ${objects.prefix}`, {
      op: "tenants.restore",
    });
  }
  return best;
}

async function manifestOf(objects: ReplicaObjects, key: TenantKey): Promise<StoredManifest> {
  const stored = await objects.readManifest();
  if (stored === null)
    throw new NotFoundError(`tenant ${key} has no manifest in object storage`, { op: "tenants.restore" });
  return stored;
}

function checked(key: TenantKey | TenantKeyInit): TenantKey {
  const valid = TenantKey.from(key);
  valid.validate();
  return valid;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
