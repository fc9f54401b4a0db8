import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  PositionFile,
  positionPath,
  type ReplicaPosition,
  readPosition,
  unpublished,
  writePosition,
} from "../../src/tenants/replica-position.js";
import { useTempDir } from "../support/temp-dir.js";

const root = useTempDir("storeroom-replica-position-");
let files = 0;
const freshDb = () => join(root, `t${files++}.db`);

const SLOT = 1024;

function at(txid: number): ReplicaPosition {
  return {
    generation: "0123456789abcdef",
    epoch: 1,
    owned: true,
    txid,
    manifestEtag: `etag-${txid}`,
    cursor: { salt1: 7, salt2: 9, seq: txid, offset: 32 + txid * 4120, checksum1: txid, checksum2: txid * 3 },
    checkpointed: false,
    closed: false,
    dirty: false,
  };
}

/** Overwrites `length` bytes at `offset` of the position file with garbage, as a torn write could leave them. */
function garble(dbPath: string, offset: number, length: number): void {
  const fd = openSync(positionPath(dbPath), "r+");
  try {
    writeSync(fd, Buffer.alloc(length, 0x5a), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

describe("replica position file", () => {
  it("reads back what writePosition and every in-place update recorded", async () => {
    const db = freshDb();
    await writePosition(db, unpublished);
    expect(await readPosition(db)).toEqual(unpublished);
    const file = PositionFile.open(db, unpublished);
    for (let txid = 1; txid <= 5; txid++) {
      file.write(at(txid));
      expect(await readPosition(db)).toEqual(at(txid));
    }
    file.close();
    // Two slots, rewritten in place: the file does not grow with updates.
    expect(readFileSync(positionPath(db)).byteLength).toBe(2 * SLOT);
  });

  it("a torn update leaves the previous position readable", async () => {
    const db = freshDb();
    await writePosition(db, at(1));
    const file = PositionFile.open(db, at(1));
    file.write(at(2));
    file.write(at(3));
    file.close();
    // Update 3 (record 2) went to slot 0, which held update 1; damage it anywhere: 2 is what is left.
    for (const [offset, length] of [
      [2, 1],
      [6, 4],
      [20, 8],
      [100, 30],
    ] as const) {
      const copy = `${db}.${offset}`;
      writeFileSync(positionPath(copy), readFileSync(positionPath(db)));
      garble(copy, offset, length);
      expect(await readPosition(copy)).toEqual(at(2));
    }
  });

  it("a file with no valid slot is of unknown origin", async () => {
    const db = freshDb();
    await writePosition(db, at(1));
    garble(db, 50, 10);
    expect(await readPosition(db)).toBeUndefined();
    expect(await readPosition(freshDb())).toBeUndefined();
  });

  it("reads a position file of the older single-JSON format and converts it at the first update", async () => {
    const db = freshDb();
    writeFileSync(positionPath(db), JSON.stringify(at(4)));
    expect(await readPosition(db)).toEqual(at(4));
    const file = PositionFile.open(db, at(4));
    // Converted before any update: never a moment without a readable position.
    expect(readFileSync(positionPath(db)).subarray(0, 4).toString()).toBe("SRP2");
    expect(await readPosition(db)).toEqual(at(4));
    file.write(at(5));
    file.close();
    expect(await readPosition(db)).toEqual(at(5));
  });

  it("continues the sequence of a file it reopens, so the newest record still wins", async () => {
    const db = freshDb();
    await writePosition(db, at(1));
    for (let txid = 2; txid <= 6; txid++) {
      const file = PositionFile.open(db, at(txid - 1));
      file.write(at(txid));
      file.close();
      expect(await readPosition(db)).toEqual(at(txid));
    }
  });

  it("property: after any updates and a torn last one, the position read is the last complete update", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: SLOT - 1 }),
        fc.integer({ min: 1, max: 64 }),
        async (updates, offset, length) => {
          const db = freshDb();
          await writePosition(db, at(0));
          const file = PositionFile.open(db, at(0));
          for (let txid = 1; txid <= updates; txid++) file.write(at(txid));
          // Update `updates + 1` is record seq updates + 1 in slot (updates + 1) % 2; tear it.
          file.write(at(updates + 1));
          file.close();
          const slot = ((updates + 1) % 2) * SLOT;
          const start = Math.min(offset, SLOT - length);
          garble(db, slot + start, length);
          const read = await readPosition(db);
          // Damage that hits only the padding after the JSON leaves the update whole.
          const whole = readFileSync(positionPath(db)).readUInt32BE(slot + 8) + 44 <= start;
          expect(read).toEqual(at(whole ? updates + 1 : updates));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a torn first update of a new file (cut short) leaves record 0", async () => {
    const db = freshDb();
    await writePosition(db, at(0));
    const file = PositionFile.open(db, at(0));
    file.write(at(1));
    file.close();
    truncateSync(positionPath(db), SLOT + 30);
    expect(await readPosition(db)).toEqual(at(0));
  });
});
