import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** Bytes of the WAL header. */
export const WAL_HEADER_BYTES = 32;
/** Bytes of a frame header (the page follows). */
export const WAL_FRAME_HEADER_BYTES = 24;
const WAL_MAGIC_LE = 0x377f0682;
const WAL_MAGIC_BE = 0x377f0683;
const WAL_VERSION = 3007000;

/** The header of a `-wal` file. Every frame of this WAL generation carries its salts. */
export interface WalHeader {
  readonly pageSize: number;
  /** Checkpoint sequence: +1 each time the WAL restarts. */
  readonly seq: number;
  readonly salt1: number;
  readonly salt2: number;
  /** Checksum of the header's first 24 bytes: where every frame's cumulative checksum starts. */
  readonly checksum1: number;
  readonly checksum2: number;
  /** Checksums are sums of big-endian words (magic 0x377f0683) instead of little-endian ones. */
  readonly bigEndian: boolean;
}

/**
 * A point in one WAL generation: the next frame starts at `offset`, and the cumulative
 * checksum of everything before it is (`checksum1`, `checksum2`).
 */
export interface WalCursor {
  readonly salt1: number;
  readonly salt2: number;
  readonly seq: number;
  readonly offset: number;
  readonly checksum1: number;
  readonly checksum2: number;
}

/** One page image of a frame. */
export interface WalFrame {
  readonly pgno: number;
  readonly data: Buffer;
}

/** The frames of one committed transaction, in WAL order; `commitPages` is the database size after it. */
export interface WalTransaction {
  readonly frames: readonly WalFrame[];
  readonly commitPages: number;
}

/** Committed transactions read after a cursor. */
export interface WalRead {
  readonly transactions: WalTransaction[];
  /** Cursor after the last commit frame read (the start cursor when none was). */
  readonly end: WalCursor;
  /** Page bytes in `transactions`. */
  readonly bytes: number;
  /** True when reading stopped at `maxBytes` with more committed frames possibly after `end`. */
  readonly more: boolean;
}

/** The cursor of a WAL generation's first frame. */
export function walStart(header: WalHeader): WalCursor {
  return {
    salt1: header.salt1,
    salt2: header.salt2,
    seq: header.seq,
    offset: WAL_HEADER_BYTES,
    checksum1: header.checksum1,
    checksum2: header.checksum2,
  };
}

/** True when `header` is the WAL SQLite writes when it restarts the generation of `cursor` after a full checkpoint. */
export function isSuccessor(header: WalHeader, cursor: WalCursor): boolean {
  return header.seq === (cursor.seq + 1) >>> 0 && header.salt1 === (cursor.salt1 + 1) >>> 0;
}

/** True when `header` belongs to the same WAL generation as `cursor`. */
export function sameGeneration(header: WalHeader, cursor: WalCursor): boolean {
  return header.salt1 === cursor.salt1 && header.salt2 === cursor.salt2 && header.seq === cursor.seq;
}

/** True when both are the same point of the same generation (or both absent). */
export function sameCursor(a: WalCursor | null, b: WalCursor | null): boolean {
  if (a === null || b === null) return a === b;
  return a.salt1 === b.salt1 && a.salt2 === b.salt2 && a.seq === b.seq && a.offset === b.offset;
}

/**
 * SQLite's WAL checksum over `data` (whose length is a multiple of 8), continuing from
 * (`s1`, `s2`): for each pair of 32-bit words, `s1 += x0 + s2; s2 += x1 + s1`.
 */
export function walChecksum(data: Uint8Array, s1: number, s2: number, bigEndian: boolean): [number, number] {
  const n = data.byteLength >>> 2;
  if (!bigEndian && data.byteOffset % 4 === 0 && isLittleEndianHost) {
    const words = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i += 2) {
      s1 = (s1 + (words[i] as number) + s2) >>> 0;
      s2 = (s2 + (words[i + 1] as number) + s1) >>> 0;
    }
    return [s1, s2];
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = !bigEndian;
  for (let i = 0; i < n; i += 2) {
    s1 = (s1 + view.getUint32(i * 4, le) + s2) >>> 0;
    s2 = (s2 + view.getUint32(i * 4 + 4, le) + s1) >>> 0;
  }
  return [s1, s2];
}

const isLittleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Parses and validates a WAL header (magic, version, page size, checksum); `undefined` when it is not one. */
export function parseWalHeader(bytes: Uint8Array): WalHeader | undefined {
  if (bytes.byteLength < WAL_HEADER_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_BYTES);
  const magic = view.getUint32(0);
  if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) return undefined;
  if (view.getUint32(4) !== WAL_VERSION) return undefined;
  const pageSize = view.getUint32(8);
  // SQLite stores 65536 as 1 in the database header but as 65536 here; sizes are powers of two from 512.
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return undefined;
  const bigEndian = magic === WAL_MAGIC_BE;
  const [c1, c2] = walChecksum(aligned(bytes.subarray(0, 24)), 0, 0, bigEndian);
  if (c1 !== view.getUint32(24) || c2 !== view.getUint32(28)) return undefined;
  return {
    pageSize,
    seq: view.getUint32(12),
    salt1: view.getUint32(16),
    salt2: view.getUint32(20),
    checksum1: c1,
    checksum2: c2,
    bigEndian,
  };
}

/**
 * A `-wal` file opened for reading committed frames. Frames are trusted only when their salts
 * match the header and their cumulative checksum matches; reading stops at the first frame
 * that fails either check (a torn or stale tail) and returns only whole transactions, up to
 * the last commit frame before that point. Reads are synchronous: deltas are small and the
 * file is in the page cache.
 */
export class WalFile {
  readonly path: string;
  /** The header, or `undefined` when the file is empty, short or not a valid WAL. */
  readonly header: WalHeader | undefined;
  readonly #fd: number;

  private constructor(path: string, fd: number, header: WalHeader | undefined) {
    this.path = path;
    this.#fd = fd;
    this.header = header;
  }

  /** Opens `path`; `undefined` when there is no such file. */
  static open(path: string): WalFile | undefined {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      const head = Buffer.from(new ArrayBuffer(WAL_HEADER_BYTES));
      const n = readSync(fd, head, 0, WAL_HEADER_BYTES, 0);
      return new WalFile(path, fd, parseWalHeader(head.subarray(0, n)));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Current size of the file in bytes. */
  get size(): number {
    return fstatSync(this.#fd).size;
  }

  /**
   * True when the frame ending at `cursor.offset` is intact in this file and carries the
   * cursor's checksum (at the first frame: the header's), i.e. the file still holds the
   * history the cursor was taken from.
   */
  holds(cursor: WalCursor): boolean {
    const header = this.header;
    if (header === undefined || !sameGeneration(header, cursor)) return false;
    if (cursor.offset === WAL_HEADER_BYTES) {
      return header.checksum1 === cursor.checksum1 && header.checksum2 === cursor.checksum2;
    }
    const frameBytes = WAL_FRAME_HEADER_BYTES + header.pageSize;
    if ((cursor.offset - WAL_HEADER_BYTES) % frameBytes !== 0 || cursor.offset < WAL_HEADER_BYTES) return false;
    const fh = this.#read(cursor.offset - frameBytes, WAL_FRAME_HEADER_BYTES);
    if (fh.byteLength < WAL_FRAME_HEADER_BYTES) return false;
    return (
      fh.readUInt32BE(8) === header.salt1 &&
      fh.readUInt32BE(12) === header.salt2 &&
      fh.readUInt32BE(16) === cursor.checksum1 &&
      fh.readUInt32BE(20) === cursor.checksum2
    );
  }

  /**
   * Whole committed transactions after `from` (which must belong to this file's generation),
   * stopping after the transaction that brings the page bytes read to `maxBytes` or more.
   */
  readTransactions(from: WalCursor, maxBytes = Number.POSITIVE_INFINITY): WalRead {
    return this.#scan(from, maxBytes, true);
  }

  /** Where the committed frames after `from` end, and how many transactions they hold (frames are checked, not kept). */
  commitsAfter(from: WalCursor): { end: WalCursor; transactions: number } {
    const read = this.#scan(from, Number.POSITIVE_INFINITY, false);
    return { end: read.end, transactions: read.transactions.length };
  }

  /** True when at least one committed transaction follows `from` (in this generation, or from the start of a newer one). */
  hasCommitsAfter(from: WalCursor): boolean {
    const header = this.header;
    if (header === undefined) return false;
    const start = sameGeneration(header, from) ? from : walStart(header);
    return this.#scan(start, 1, false).transactions.length > 0;
  }

  #scan(from: WalCursor, maxBytes: number, keep: boolean): WalRead {
    const header = this.header;
    if (header === undefined || !sameGeneration(header, from)) {
      return { transactions: [], end: from, bytes: 0, more: false };
    }
    const frameBytes = WAL_FRAME_HEADER_BYTES + header.pageSize;
    const transactions: WalTransaction[] = [];
    let end = from;
    let bytes = 0;
    let pending: WalFrame[] = [];
    let offset = from.offset;
    let s1 = from.checksum1;
    let s2 = from.checksum2;
    const size = this.size;
    // Up to ~1 MiB per read; kept frames are views into the chunk they came from.
    const framesPerChunk = Math.max(1, Math.floor((1 << 20) / frameBytes));
    for (;;) {
      if (offset + frameBytes > size) break;
      const count = Math.min(framesPerChunk, Math.floor((size - offset) / frameBytes));
      const chunk = this.#read(offset, count * frameBytes);
      const whole = Math.floor(chunk.byteLength / frameBytes);
      let valid = true;
      for (let i = 0; i < whole; i++) {
        const at = i * frameBytes;
        const pgno = chunk.readUInt32BE(at);
        const commit = chunk.readUInt32BE(at + 4);
        if (pgno === 0 || chunk.readUInt32BE(at + 8) !== header.salt1 || chunk.readUInt32BE(at + 12) !== header.salt2) {
          valid = false;
          break;
        }
        [s1, s2] = walChecksum(chunk.subarray(at, at + 8), s1, s2, header.bigEndian);
        const data = chunk.subarray(at + WAL_FRAME_HEADER_BYTES, at + frameBytes);
        [s1, s2] = walChecksum(data, s1, s2, header.bigEndian);
        if (s1 !== chunk.readUInt32BE(at + 16) || s2 !== chunk.readUInt32BE(at + 20)) {
          valid = false;
          break;
        }
        if (keep) pending.push({ pgno, data });
        offset += frameBytes;
        if (commit !== 0) {
          transactions.push({ frames: pending, commitPages: commit });
          bytes += (keep ? pending.length : 1) * header.pageSize;
          pending = [];
          end = { salt1: header.salt1, salt2: header.salt2, seq: header.seq, offset, checksum1: s1, checksum2: s2 };
          if (bytes >= maxBytes) return { transactions, end, bytes, more: true };
        }
      }
      if (!valid || whole < count) break;
    }
    return { transactions, end, bytes, more: false };
  }

  /**
   * The offset of the newest frame of each page written before `upTo` in this generation
   * (frames before it are assumed valid: callers pass a cursor they read themselves).
   */
  pageFrames(upTo: number): Map<number, number> {
    const header = this.header;
    const frames = new Map<number, number>();
    if (header === undefined) return frames;
    const frameBytes = WAL_FRAME_HEADER_BYTES + header.pageSize;
    const framesPerChunk = Math.max(1, Math.floor((1 << 20) / frameBytes));
    for (let offset = WAL_HEADER_BYTES; offset + frameBytes <= upTo; ) {
      const count = Math.min(framesPerChunk, Math.floor((upTo - offset) / frameBytes));
      const chunk = this.#read(offset, count * frameBytes);
      for (let i = 0; i < count; i++) frames.set(chunk.readUInt32BE(i * frameBytes), offset + i * frameBytes);
      offset += count * frameBytes;
    }
    return frames;
  }

  /** Page number and commit field (database size after the transaction, 0 inside one) of the frame at `offset`. */
  pageHeader(offset: number): { pgno: number; commitPages: number } {
    const fh = this.#read(offset, 8);
    return { pgno: fh.readUInt32BE(0), commitPages: fh.readUInt32BE(4) };
  }

  /** The page image of the frame at `offset`. */
  pageAt(offset: number): Buffer {
    const header = this.header as WalHeader;
    return this.#read(offset + WAL_FRAME_HEADER_BYTES, header.pageSize);
  }

  close(): void {
    closeSync(this.#fd);
  }

  #read(position: number, length: number): Buffer {
    const buf = Buffer.from(new ArrayBuffer(length));
    let got = 0;
    while (got < length) {
      const n = readSync(this.#fd, buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  }
}

function aligned(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset % 4 === 0) return bytes;
  return new Uint8Array(bytes);
}
