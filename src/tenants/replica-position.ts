import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import type { Manifest } from "./manifest.js";
import { sameCursor, type WalCursor } from "./wal-reader.js";

/**
 * What a local tenant file is, relative to object storage, kept next to it as
 * `<file>.replica` and updated after every published manifest (and before every checkpoint
 * and clean close) by {@link PositionFile}. With the cache directory's writer id it lets a
 * restarted process recognise its own manifest and resume shipping exactly where it stood.
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

/*
 * The position file holds two fixed-size slots, each: "SRP2", a sequence number and a length
 * (uint32 BE), the SHA-256 of those 8 bytes and the JSON, then the JSON and zero padding.
 * Record `seq` goes to slot `seq % 2`, the one not holding the latest record, so a torn write
 * (a power loss mid-write) leaves the previous position readable; a new file holds record 0.
 * Why in place: replacing a file by rename after every publication cost a new inode and, on
 * ext4, a flush of the new file's data.
 */
const SLOT = 1024;
const MAGIC = Buffer.from("SRP2");
const HEADER = 44;

function encodeSlot(seq: number, position: ReplicaPosition): Buffer {
  const json = Buffer.from(JSON.stringify(position));
  if (json.byteLength > SLOT - HEADER) throw new Error(`replica position too large (${json.byteLength} bytes)`);
  const slot = Buffer.alloc(SLOT);
  MAGIC.copy(slot, 0);
  slot.writeUInt32BE(seq, 4);
  slot.writeUInt32BE(json.byteLength, 8);
  json.copy(slot, HEADER);
  createHash("sha256").update(slot.subarray(4, 12)).update(json).digest().copy(slot, 12);
  return slot;
}

function decodeSlot(slot: Buffer): { seq: number; position: ReplicaPosition } | undefined {
  if (slot.byteLength < HEADER || !slot.subarray(0, 4).equals(MAGIC)) return undefined;
  const length = slot.readUInt32BE(8);
  if (length > slot.byteLength - HEADER) return undefined;
  const json = slot.subarray(HEADER, HEADER + length);
  const digest = createHash("sha256").update(slot.subarray(4, 12)).update(json).digest();
  if (!digest.equals(slot.subarray(12, HEADER))) return undefined;
  const position = parsePosition(json.toString("utf8"));
  return position === undefined ? undefined : { seq: slot.readUInt32BE(4), position };
}

/** The latest valid record of a position file's bytes; `format` tells whether they are slots, the older single JSON document, or neither. */
function decodePositionFile(bytes: Buffer): {
  format: "slots" | "json" | "unknown";
  seq: number;
  position: ReplicaPosition | undefined;
} {
  let best: { seq: number; position: ReplicaPosition } | undefined;
  for (let at = 0; at < bytes.byteLength; at += SLOT) {
    const record = decodeSlot(bytes.subarray(at, at + SLOT));
    if (record !== undefined && (best === undefined || record.seq > best.seq)) best = record;
  }
  if (best !== undefined) return { format: "slots", seq: best.seq, position: best.position };
  // Written by versions that replaced one JSON document per update.
  const position = parsePosition(bytes.toString("utf8"));
  return { format: position === undefined ? "unknown" : "json", seq: 0, position };
}

function parsePosition(text: string): ReplicaPosition | undefined {
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

/** The recorded position, or `undefined` when there is none (or it is unreadable: the file is then of unknown origin). */
export async function readPosition(dbPath: string): Promise<ReplicaPosition | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(positionPath(dbPath));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return decodePositionFile(bytes).position;
}

/** Replaces the position file atomically (temp file, rename) with one holding `position` alone. */
export async function writePosition(dbPath: string, position: ReplicaPosition): Promise<void> {
  const tmp = `${positionPath(dbPath)}.${process.pid}.tmp`;
  await writeFile(tmp, encodeSlot(0, position), { mode: 0o600 });
  await rename(tmp, positionPath(dbPath));
}

/**
 * The position file of an open replica, updated in place after every publication: one write
 * of one slot, no new file. Not fsynced, like the rename it replaces: after a power loss the
 * position may be older than the manifest, which a restart recognises as its own writer's.
 */
export class PositionFile {
  readonly #fd: number;
  #seq: number;

  private constructor(fd: number, seq: number) {
    this.#fd = fd;
    this.#seq = seq;
  }

  /**
   * Opens the position file of `dbPath` for updates. A file in the older format (or none) is
   * first replaced atomically by one holding `current`, so no moment leaves it without a position.
   */
  static open(dbPath: string, current: ReplicaPosition): PositionFile {
    const path = positionPath(dbPath);
    let seq = 0;
    let format: "slots" | "json" | "unknown" | "missing" = "missing";
    try {
      ({ seq, format } = decodePositionFile(readFileSync(path)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (format !== "slots") {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, encodeSlot(0, current), { mode: 0o600 });
      renameSync(tmp, path);
      seq = 0;
    }
    return new PositionFile(openSync(path, "r+"), seq);
  }

  /** Records `position` in the slot that does not hold the latest record. */
  write(position: ReplicaPosition): void {
    const seq = this.#seq + 1;
    const slot = encodeSlot(seq, position);
    if (writeSync(this.#fd, slot, 0, SLOT, (seq % 2) * SLOT) !== SLOT) {
      throw new Error("short write of the replica position");
    }
    this.#seq = seq;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Removes a local database with its WAL, shared-memory, position and legacy state files. */
export async function removeLocalDatabase(dbPath: string): Promise<void> {
  await Promise.all(
    [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, positionPath(dbPath), `${dbPath}.state`].map((p) =>
      rm(p, { force: true }),
    ),
  );
}
