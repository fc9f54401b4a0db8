import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CorruptDatabaseError } from "../../src/errors.js";
import { openSqlite, type SqliteDatabase } from "../../src/sql/index.js";
import { decodeSegment, encodeSegment } from "../../src/tenants/segment-codec.js";
import {
  isSuccessor,
  parseWalHeader,
  sameGeneration,
  WAL_FRAME_HEADER_BYTES,
  WAL_HEADER_BYTES,
  type WalCursor,
  WalFile,
  walChecksum,
  walStart,
} from "../../src/tenants/wal-reader.js";
import { useTempDir } from "../support/temp-dir.js";

const root = useTempDir("storeroom-wal-");
let n = 0;

/** A database in WAL mode that never checkpoints by itself, with `count` committed single-row inserts. */
async function walWith(count: number): Promise<{ db: SqliteDatabase; path: string }> {
  const path = join(root, `w${n++}.db`);
  const db = await openSqlite(path, { walAutocheckpoint: 0, readConnection: false });
  await db.run("CREATE TABLE t (v TEXT)");
  for (let i = 0; i < count; i++) await db.run("INSERT INTO t VALUES ($1)", [`row ${i} `.repeat(20)]);
  return { db, path };
}

/** A copy of the WAL file as it is now, to damage. */
function copyWal(path: string): string {
  const copy = join(root, `copy${n++}-wal`);
  copyFileSync(`${path}-wal`, copy);
  return copy;
}

function read(path: string, from?: WalCursor) {
  const wal = WalFile.open(path) as WalFile;
  try {
    return wal.readTransactions(from ?? walStart(wal.header as NonNullable<WalFile["header"]>));
  } finally {
    wal.close();
  }
}

function frameOffset(pageSize: number, index: number): number {
  return WAL_HEADER_BYTES + index * (WAL_FRAME_HEADER_BYTES + pageSize);
}

/** Index of the first frame of transaction `k` (0-based) in a WAL read from its start. */
function firstFrameOf(path: string, k: number): number {
  return read(path)
    .transactions.slice(0, k)
    .reduce((sum, t) => sum + t.frames.length, 0);
}

describe("WAL reader", () => {
  it("reads every committed transaction of a real WAL, page images and database sizes included", async () => {
    const { db, path } = await walWith(5);
    const copy = copyWal(path);
    const result = read(copy);
    expect(result.transactions).toHaveLength(6);
    expect(result.transactions.every((t) => t.frames.length >= 1 && t.commitPages >= 2)).toBe(true);
    expect(result.end.offset).toBe(readFileSync(copy).byteLength);
    const wal = WalFile.open(copy) as WalFile;
    expect(wal.holds(result.end)).toBe(true);
    expect(wal.readTransactions(result.end).transactions).toEqual([]);
    wal.close();
    await db.close();
  });

  it("stops at a torn frame: only whole transactions before it are read", async () => {
    const { db, path } = await walWith(4);
    const copy = copyWal(path);
    const whole = read(copy);
    const bytes = readFileSync(copy);
    // Cut inside the last frame (a write interrupted by a crash).
    writeFileSync(copy, bytes.subarray(0, bytes.byteLength - 100));
    const torn = read(copy);
    expect(torn.transactions).toHaveLength(whole.transactions.length - 1);
    expect(torn.end.offset).toBeLessThan(whole.end.offset);
    await db.close();
  });

  it("never reads a frame with a wrong salt, nor anything after it", async () => {
    const { db, path } = await walWith(4);
    const copy = copyWal(path);
    const frame = firstFrameOf(copy, 2);
    const bytes = readFileSync(copy);
    const header = parseWalHeader(bytes) as NonNullable<WalFile["header"]>;
    // The first frame of transaction 2 carries a salt of another WAL generation.
    bytes.writeUInt32BE((header.salt1 + 7) >>> 0, frameOffset(header.pageSize, frame) + 8);
    writeFileSync(copy, bytes);
    const result = read(copy);
    expect(result.transactions).toHaveLength(2);
    expect(result.end.offset).toBe(frameOffset(header.pageSize, frame));
    await db.close();
  });

  it("never reads a frame whose checksum fails, nor anything after it", async () => {
    const { db, path } = await walWith(4);
    const copy = copyWal(path);
    const frame = firstFrameOf(copy, 3);
    const bytes = readFileSync(copy);
    const header = parseWalHeader(bytes) as NonNullable<WalFile["header"]>;
    const at = frameOffset(header.pageSize, frame) + WAL_FRAME_HEADER_BYTES + 500;
    bytes[at] = (bytes[at] as number) ^ 0xff;
    writeFileSync(copy, bytes);
    expect(read(copy).transactions).toHaveLength(3);
    await db.close();
  });

  it("checksums big-endian WALs too (magic 0x377f0683)", async () => {
    const { db, path } = await walWith(3);
    const copy = copyWal(path);
    const little = read(copy);
    const bytes = readFileSync(copy);
    const header = parseWalHeader(bytes) as NonNullable<WalFile["header"]>;
    // Rewrite the header magic and every checksum as a big-endian machine would have written them.
    bytes.writeUInt32BE(0x377f0683, 0);
    let [s1, s2] = walChecksum(new Uint8Array(bytes.subarray(0, 24)), 0, 0, true);
    bytes.writeUInt32BE(s1, 24);
    bytes.writeUInt32BE(s2, 28);
    const frameBytes = WAL_FRAME_HEADER_BYTES + header.pageSize;
    for (let at = WAL_HEADER_BYTES; at + frameBytes <= bytes.byteLength; at += frameBytes) {
      [s1, s2] = walChecksum(new Uint8Array(bytes.subarray(at, at + 8)), s1, s2, true);
      [s1, s2] = walChecksum(new Uint8Array(bytes.subarray(at + 24, at + frameBytes)), s1, s2, true);
      bytes.writeUInt32BE(s1, at + 16);
      bytes.writeUInt32BE(s2, at + 20);
    }
    writeFileSync(copy, bytes);
    const big = read(copy);
    expect(parseWalHeader(bytes)?.bigEndian).toBe(true);
    expect(big.transactions.map((t) => t.frames.map((f) => f.data))).toEqual(
      little.transactions.map((t) => t.frames.map((f) => f.data)),
    );
    await db.close();
  });

  it("rejects headers that are not a WAL's", () => {
    const good = Buffer.alloc(32);
    good.writeUInt32BE(0x377f0682, 0);
    good.writeUInt32BE(3007000, 4);
    good.writeUInt32BE(4096, 8);
    const [c1, c2] = walChecksum(new Uint8Array(good.subarray(0, 24)), 0, 0, false);
    good.writeUInt32BE(c1, 24);
    good.writeUInt32BE(c2, 28);
    expect(parseWalHeader(good)?.pageSize).toBe(4096);
    const variants: [number, number][] = [
      [0, 0x377f0681],
      [4, 3007001],
      [8, 1000],
      [24, c1 ^ 1],
    ];
    for (const [at, value] of variants) {
      const bad = Buffer.from(good);
      bad.writeUInt32BE(value >>> 0, at);
      expect(parseWalHeader(bad)).toBeUndefined();
    }
    expect(parseWalHeader(good.subarray(0, 31))).toBeUndefined();
  });

  it("recognises the WAL SQLite restarts after a full checkpoint as the next generation", async () => {
    const { db, path } = await walWith(2);
    const before = read(`${path}-wal`).end;
    expect((await db.checkpoint("passive"))?.checkpointedFrames).toBeGreaterThan(0);
    await db.run("INSERT INTO t VALUES ('after')");
    const wal = WalFile.open(`${path}-wal`) as WalFile;
    const header = wal.header as NonNullable<WalFile["header"]>;
    expect(sameGeneration(header, before)).toBe(false);
    expect(isSuccessor(header, before)).toBe(true);
    expect(wal.holds(before)).toBe(false);
    expect(wal.readTransactions(walStart(header)).transactions).toHaveLength(1);
    wal.close();
    await db.close();
  });

  it("checkpoints only when the guard holds on the writer", async () => {
    const { db, path } = await walWith(2);
    expect(await db.checkpoint("passive", () => false)).toBeUndefined();
    expect(read(`${path}-wal`).transactions).toHaveLength(3);
    await expect(db.checkpoint("bogus" as never)).rejects.toThrow(/checkpoint mode/);
    await db.close();
  });
});

describe("segment codec", () => {
  it("round-trips transactions and refuses damaged or truncated segments", async () => {
    const { db, path } = await walWith(3);
    const { transactions } = read(`${path}-wal`);
    const encoded = await encodeSegment({ pageSize: 4096, firstTxid: 2 ** 33 + 5, transactions });
    const decoded = await decodeSegment(encoded);
    expect(decoded.firstTxid).toBe(2 ** 33 + 5);
    expect(decoded.transactions).toEqual(transactions);
    const flipped = Buffer.from(encoded);
    flipped[flipped.byteLength >> 1] = (flipped[flipped.byteLength >> 1] as number) ^ 0x55;
    await expect(decodeSegment(flipped)).rejects.toBeInstanceOf(CorruptDatabaseError);
    await expect(decodeSegment(encoded.subarray(0, encoded.byteLength - 10))).rejects.toBeInstanceOf(
      CorruptDatabaseError,
    );
    const { gzipSync } = await import("node:zlib");
    await expect(decodeSegment(gzipSync(Buffer.from("SRWSEG01 but nothing else")))).rejects.toThrow(
      /not a WAL segment/,
    );
    await expect(encodeSegment({ pageSize: 4096, firstTxid: 1, transactions: [] })).rejects.toThrow(RangeError);
    await db.close();
  });
});
