import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { gunzip, gunzipSync, gzip, gzipSync } from "node:zlib";
import { CorruptDatabaseError } from "../errors.js";
import type { WalTransaction } from "./wal-reader.js";

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
/** Below this size (de)compression runs inline: cheaper than a trip through the thread pool, which fsyncs also occupy. */
const INLINE_BYTES = 256 * 1024;

const MAGIC = Buffer.from("SRWSEG01", "latin1");
const HEAD_BYTES = MAGIC.byteLength + 4 * 5;
const DIGEST_BYTES = 32;

/** The decoded content of a segment: consecutive committed transactions. */
export interface Segment {
  readonly pageSize: number;
  /** Transaction id of the first transaction; the others follow one by one. */
  readonly firstTxid: number;
  readonly transactions: readonly WalTransaction[];
}

/** Transaction id of a segment's last transaction. */
export function lastTxid(segment: Segment): number {
  return segment.firstTxid + segment.transactions.length - 1;
}

/**
 * Encodes a segment: `SRWSEG01`, page size, transaction count, first transaction id (two
 * 32-bit halves), frame count, then per frame its page number, the database size in pages
 * when it ends a transaction (else 0) and the page, then a SHA-256 of everything before; the
 * whole is gzip-compressed.
 */
export async function encodeSegment(segment: Segment): Promise<Buffer> {
  const frames = segment.transactions.reduce((n, t) => n + t.frames.length, 0);
  if (segment.transactions.length === 0) throw new RangeError("a segment holds at least one transaction");
  const body = Buffer.allocUnsafe(HEAD_BYTES + frames * (8 + segment.pageSize) + DIGEST_BYTES);
  MAGIC.copy(body, 0);
  let at = MAGIC.byteLength;
  at = body.writeUInt32BE(segment.pageSize, at);
  at = body.writeUInt32BE(segment.transactions.length, at);
  at = body.writeUInt32BE(Math.floor(segment.firstTxid / 2 ** 32), at);
  at = body.writeUInt32BE(segment.firstTxid % 2 ** 32, at);
  at = body.writeUInt32BE(frames, at);
  for (const tx of segment.transactions) {
    tx.frames.forEach((frame, i) => {
      if (frame.data.byteLength !== segment.pageSize) throw new RangeError("frame size differs from the page size");
      at = body.writeUInt32BE(frame.pgno, at);
      at = body.writeUInt32BE(i === tx.frames.length - 1 ? tx.commitPages : 0, at);
      at += frame.data.copy(body, at);
    });
  }
  createHash("sha256").update(body.subarray(0, at)).digest().copy(body, at);
  return body.byteLength < INLINE_BYTES ? gzipSync(body, { level: 6 }) : gzipAsync(body, { level: 6 });
}

/**
 * Decodes and verifies a segment ({@link CorruptDatabaseError} when it is not one, its digest
 * does not match, or a transaction lacks its commit frame).
 */
export async function decodeSegment(compressed: Uint8Array, name = "segment"): Promise<Segment> {
  let body: Buffer;
  try {
    body = compressed.byteLength < INLINE_BYTES / 4 ? gunzipSync(compressed) : await gunzipAsync(compressed);
  } catch (err) {
    throw corrupt(`${name} is not gzip data`, err);
  }
  if (body.byteLength < HEAD_BYTES + DIGEST_BYTES || !body.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    throw corrupt(`${name} is not a WAL segment`);
  }
  const digestAt = body.byteLength - DIGEST_BYTES;
  const digest = createHash("sha256").update(body.subarray(0, digestAt)).digest();
  if (!digest.equals(body.subarray(digestAt))) throw corrupt(`${name} fails its checksum`);
  let at = MAGIC.byteLength;
  const pageSize = body.readUInt32BE(at);
  const count = body.readUInt32BE(at + 4);
  const firstTxid = body.readUInt32BE(at + 8) * 2 ** 32 + body.readUInt32BE(at + 12);
  const frames = body.readUInt32BE(at + 16);
  at = HEAD_BYTES;
  if (at + frames * (8 + pageSize) !== digestAt) throw corrupt(`${name} has a wrong length`);
  const transactions: WalTransaction[] = [];
  let pending: { pgno: number; data: Buffer }[] = [];
  for (let i = 0; i < frames; i++) {
    const pgno = body.readUInt32BE(at);
    const commit = body.readUInt32BE(at + 4);
    pending.push({ pgno, data: body.subarray(at + 8, at + 8 + pageSize) });
    at += 8 + pageSize;
    if (commit !== 0) {
      transactions.push({ frames: pending, commitPages: commit });
      pending = [];
    }
  }
  if (pending.length > 0 || transactions.length !== count || count === 0) {
    throw corrupt(`${name} does not end on a commit`);
  }
  return { pageSize, firstTxid, transactions };
}

function corrupt(message: string, cause?: unknown): CorruptDatabaseError {
  return new CorruptDatabaseError(message, { op: "tenants.restore", ...(cause === undefined ? {} : { cause }) });
}
