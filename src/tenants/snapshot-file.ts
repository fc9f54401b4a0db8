import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { CorruptDatabaseError } from "../errors.js";
import { WAL_FRAME_HEADER_BYTES, WAL_HEADER_BYTES, type WalCursor, type WalFile } from "./wal-reader.js";

/** The first 16 bytes of every SQLite database file. */
const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
const PAGES_PER_CHUNK = 256;

/** A compressed database image written to a local file. */
export interface SnapshotFile {
  readonly pages: number;
  readonly pageSize: number;
  /** Compressed bytes. */
  readonly bytes: number;
  /** SHA-256 of the compressed bytes, hex. */
  readonly sha256: string;
}

/** Page size recorded in a database header (`undefined` when the bytes are not one). */
export function headerPageSize(header: Uint8Array): number | undefined {
  if (header.byteLength < 18 || !SQLITE_MAGIC.equals(header.subarray(0, 16))) return undefined;
  const raw = (header[16] as number) * 256 + (header[17] as number);
  return raw === 1 ? 65536 : raw;
}

/** True for an empty buffer or one that starts with the SQLite header. */
export function isSqliteHeader(header: Uint8Array): boolean {
  return header.byteLength === 0 || (header.byteLength >= 16 && SQLITE_MAGIC.equals(header.subarray(0, 16)));
}

/**
 * Writes the database as of `upTo` to `out`, gzip-compressed: every page from the WAL's newest
 * frame for it before `upTo`, else from the database file, truncated to the size the last
 * commit recorded. Callers make sure nothing checkpoints into the database file meanwhile
 * (frames after `upTo` may be appended: they are not read). `upTo` null: the file alone.
 */
export async function writeSnapshotFile(
  dbPath: string,
  wal: WalFile | undefined,
  upTo: WalCursor | null,
  out: string,
): Promise<SnapshotFile> {
  const db = await open(dbPath, "r");
  try {
    const size = (await db.stat()).size;
    const head = Buffer.alloc(100);
    await db.read(head, 0, 100, 0);
    const useWal = wal?.header !== undefined && upTo !== null && upTo.offset > WAL_HEADER_BYTES;
    const pageSize = useWal ? (wal?.header?.pageSize as number) : (headerPageSize(head) ?? 4096);
    const frames = useWal ? (wal as WalFile).pageFrames(upTo.offset) : new Map<number, number>();
    const pages = useWal ? commitPagesBefore(wal as WalFile, upTo.offset) : Math.floor(size / pageSize);
    async function* image(): AsyncGenerator<Buffer> {
      for (let first = 1; first <= pages; first += PAGES_PER_CHUNK) {
        const count = Math.min(PAGES_PER_CHUNK, pages - first + 1);
        const chunk = Buffer.alloc(count * pageSize);
        const from = (first - 1) * pageSize;
        if (from < size) await db.read(chunk, 0, Math.min(chunk.byteLength, size - from), from);
        for (let i = 0; i < count; i++) {
          const at = frames.get(first + i);
          if (at !== undefined) (wal as WalFile).pageAt(at).copy(chunk, i * pageSize);
          else if (from + (i + 1) * pageSize > size) {
            throw new CorruptDatabaseError(`page ${first + i} of ${dbPath} is neither in the file nor in the WAL`, {
              op: "tenants.snapshot",
            });
          }
        }
        yield chunk;
      }
    }
    const hash = createHash("sha256");
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        done(null, chunk);
      },
    });
    await pipeline(Readable.from(image()), createGzip({ level: 3 }), tap, createWriteStream(out, { mode: 0o600 }));
    return { pages, pageSize, bytes, sha256: hash.digest("hex") };
  } finally {
    await db.close();
  }
}

/**
 * Decompresses a stored snapshot into `path`, checking the digest of the stored bytes, the
 * size and the header ({@link CorruptDatabaseError} otherwise; `path` is then incomplete and
 * the caller removes it).
 */
export async function readSnapshotInto(
  body: AsyncIterable<Uint8Array> | Readable,
  path: string,
  expected: { sha256: string; pages: number; pageSize: number; name: string },
): Promise<void> {
  const hash = createHash("sha256");
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    // 1 MiB chunks: the default 16 KiB makes decompressing a large image a few thousand small writes.
    await pipeline(
      body,
      tap,
      createGunzip({ chunkSize: 1 << 20 }),
      createWriteStream(path, { mode: 0o600, highWaterMark: 1 << 20 }),
    );
  } catch (err) {
    throw new CorruptDatabaseError(`${expected.name} could not be decompressed`, { op: "tenants.restore", cause: err });
  }
  if (hash.digest("hex") !== expected.sha256) {
    throw new CorruptDatabaseError(`${expected.name} fails its checksum`, { op: "tenants.restore" });
  }
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(18);
    await file.read(head, 0, 18, 0);
    const pageSize = headerPageSize(head);
    if (size !== expected.pages * expected.pageSize || (size > 0 && pageSize !== expected.pageSize)) {
      throw new CorruptDatabaseError(`${expected.name} is not the database image its manifest describes`, {
        op: "tenants.restore",
      });
    }
  } finally {
    await file.close();
  }
}

function commitPagesBefore(wal: WalFile, offset: number): number {
  const frameBytes = WAL_FRAME_HEADER_BYTES + (wal.header?.pageSize as number);
  return wal.pageHeader(offset - frameBytes).commitPages;
}
