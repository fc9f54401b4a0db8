import { CorruptDatabaseError } from "../errors.js";
import type { WalCursor } from "./wal-reader.js";

/** Version of the manifest layout written by this code. */
export const MANIFEST_FORMAT = 1;

/** A compressed database image: the tenant's state after transaction `txid`. */
export interface SnapshotEntry {
  /** Object key relative to the tenant's prefix, e.g. `snapshots/000000000000002a-....db.gz`. */
  readonly key: string;
  readonly txid: number;
  /** Database size in pages. */
  readonly pages: number;
  /** Stored (compressed) bytes. */
  readonly bytes: number;
  /** SHA-256 of the stored bytes, hex. */
  readonly sha256: string;
  /** When it was taken, ms since the epoch. */
  readonly time: number;
  /** The generation (chain of segments) this image starts or belongs to. */
  readonly generation: string;
}

/**
 * One entry of the transaction log: a segment (level 0) or a pack (level n, an object listing
 * the entries of level n - 1 it replaces). Covers transactions `first..last`.
 */
export interface LogItem {
  readonly level: number;
  readonly key: string;
  readonly first: number;
  readonly last: number;
  /** Stored bytes of the segments it covers. */
  readonly bytes: number;
  /** Segments it covers. */
  readonly count: number;
  /** When its last segment was shipped, ms since the epoch. */
  readonly time: number;
  /** SHA-256 of the object's stored bytes, hex. */
  readonly sha256: string;
}

/**
 * The one object of a tenant updated in place, always with a condition on its previous etag
 * (or on its absence): publishing a manifest is the moment a segment or snapshot becomes part
 * of the tenant. Everything it names was written before it.
 */
export interface Manifest {
  readonly format: number;
  /** Id of the chain of segments since the last snapshot that did not follow from segments (a new generation). */
  readonly generation: string;
  /** Fencing epoch: +1 each time a writer takes the tenant over. */
  readonly epoch: number;
  /** Id of the writer (a cache directory) holding `epoch`. */
  readonly writer: string;
  readonly pageSize: number;
  /** Last transaction the manifest names. */
  readonly txid: number;
  /** Database size in pages after `txid`. */
  readonly pages: number;
  /** When it was written, ms since the epoch. */
  readonly time: number;
  /** The writer's WAL position after `txid`; lets the same writer recognise and resume it after a crash. */
  readonly position: WalCursor | null;
  /** Snapshots inside retention, oldest first; the last one is where hydration starts. */
  readonly snapshots: readonly SnapshotEntry[];
  /** Segments and packs inside retention, by transaction id. */
  readonly log: readonly LogItem[];
  /** Stored bytes and count of segments shipped since the last snapshot (the snapshot trigger). */
  readonly sinceSnapshot: { readonly bytes: number; readonly count: number };
}

/** Serialises a manifest (compact JSON: it is rewritten on every shipped segment). */
export function encodeManifest(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest));
}

/** Parses and checks a manifest; anything malformed -> {@link CorruptDatabaseError}. */
export function decodeManifest(bytes: Uint8Array, name: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw corrupt(`${name} is not JSON`, err);
  }
  const m = value as Manifest;
  const ok =
    isObject(m) &&
    m.format === MANIFEST_FORMAT &&
    typeof m.generation === "string" &&
    typeof m.writer === "string" &&
    isCount(m.epoch) &&
    isCount(m.pageSize) &&
    isCount(m.txid) &&
    isCount(m.pages) &&
    isCount(m.time) &&
    (m.position === null || isCursor(m.position)) &&
    Array.isArray(m.snapshots) &&
    m.snapshots.length > 0 &&
    m.snapshots.every(isSnapshot) &&
    Array.isArray(m.log) &&
    m.log.every(isLogItem) &&
    isObject(m.sinceSnapshot) &&
    isCount(m.sinceSnapshot.bytes) &&
    isCount(m.sinceSnapshot.count);
  if (!ok) throw corrupt(`${name} is not a tenant manifest of format ${MANIFEST_FORMAT}`);
  return m;
}

/** Checks a decoded pack object (a JSON array of log items one level below it). */
export function decodePack(bytes: Uint8Array, name: string): LogItem[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw corrupt(`${name} is not JSON`, err);
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every(isLogItem)) {
    throw corrupt(`${name} is not a list of log items`);
  }
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isKey(v: unknown): v is string {
  return typeof v === "string" && /^(snapshots|segments|packs)\/[A-Za-z0-9._-]+$/.test(v);
}

function isHex(v: unknown): v is string {
  return typeof v === "string" && /^[0-9a-f]{64}$/.test(v);
}

function isCursor(v: unknown): v is WalCursor {
  if (!isObject(v)) return false;
  return ["salt1", "salt2", "seq", "offset", "checksum1", "checksum2"].every((f) => isCount(v[f]));
}

function isSnapshot(v: unknown): v is SnapshotEntry {
  return (
    isObject(v) &&
    isKey(v.key) &&
    isCount(v.txid) &&
    isCount(v.pages) &&
    isCount(v.bytes) &&
    isHex(v.sha256) &&
    isCount(v.time) &&
    typeof v.generation === "string"
  );
}

function isLogItem(v: unknown): v is LogItem {
  return (
    isObject(v) &&
    isCount(v.level) &&
    isKey(v.key) &&
    isCount(v.first) &&
    isCount(v.last) &&
    (v.first as number) <= (v.last as number) &&
    isCount(v.bytes) &&
    isCount(v.count) &&
    isCount(v.time) &&
    isHex(v.sha256)
  );
}

function corrupt(message: string, cause?: unknown): CorruptDatabaseError {
  return new CorruptDatabaseError(message, { op: "tenants.manifest", ...(cause === undefined ? {} : { cause }) });
}
