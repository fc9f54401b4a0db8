import type { ObjectStore } from "../objects/index.js";
import { checkPartLength } from "./part-body.js";
import { expectedPartSize, type UploadClaim } from "./upload-claim.js";

/** A part stored by {@link PartWriter}, to be recorded in order. */
export interface WrittenPart {
  readonly partNumber: number;
  readonly etag: string;
  readonly size: number;
}

/**
 * Part-sized buffers reused from one part to the next. Why: a fresh buffer per part costs a
 * page fault per 4 KiB on first touch, as much CPU as the copy itself; stores keep no
 * reference to a body once `putPart` settled, so a buffer is free again then.
 */
export class PartBuffers {
  readonly #free: Buffer[] = [];
  readonly #maxFree: number;

  /** Keeps at most `maxFree` free buffers. */
  constructor(maxFree: number) {
    this.#maxFree = maxFree;
  }

  /** A buffer of exactly `size` bytes (contents undefined). */
  take(size: number): Buffer {
    const index = this.#free.findIndex((b) => b.byteLength === size);
    return index >= 0 ? (this.#free.splice(index, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(size);
  }

  /** Returns a buffer nobody references any more. */
  give(buffer: Buffer): void {
    if (this.#free.length < this.#maxFree) this.#free.push(buffer);
  }
}

interface InFlight {
  readonly buffer: Buffer;
  readonly size: number;
  readonly partNumber: number;
  readonly stored: Promise<WrittenPart>;
  /** Set once `stored` resolved. */
  written?: WrittenPart;
}

/** Bytes of parts being stored at once by one append (at least one part). */
export const IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/**
 * Cuts a byte stream into the claim's parts, starting inside part `partNumber` with `tail`
 * already received. Parts are stored while the next ones fill: up to {@link IN_FLIGHT_BYTES}
 * of them at once (at least one), so the store's latency per part hides behind the arrival
 * of the next bytes.
 */
export class PartWriter {
  readonly #objects: ObjectStore;
  readonly #claim: UploadClaim;
  readonly #buffers: PartBuffers;
  readonly #maxInFlight: number;
  #partNumber: number;
  #fill: Buffer | undefined;
  #filled = 0;
  readonly #inFlight: InFlight[] = [];
  #stored: WrittenPart[] = [];
  /** Bytes of the upload received so far (recorded parts, the parts in flight, the buffer). */
  received: number;

  constructor(objects: ObjectStore, claim: UploadClaim, partNumber: number, tail: Buffer, buffers: PartBuffers) {
    this.#objects = objects;
    this.#claim = claim;
    this.#buffers = buffers;
    this.#maxInFlight = Math.max(1, Math.floor(IN_FLIGHT_BYTES / claim.partSize));
    this.#partNumber = partNumber;
    if (tail.byteLength > 0) {
      this.#fill = buffers.take(claim.partSize);
      this.#filled = tail.copy(this.#fill);
    }
    this.received = (partNumber - 1) * claim.partSize + tail.byteLength;
  }

  /**
   * Buffers `chunk`, starting the store of every part it fills. Throws when an earlier part's
   * store failed (the parts stored before it are still in {@link takeStored}).
   */
  async add(chunk: Uint8Array): Promise<void> {
    this.received += chunk.byteLength;
    for (let at = 0; at < chunk.byteLength; ) {
      const want = expectedPartSize(this.#claim, this.#partNumber);
      this.#fill ??= this.#buffers.take(this.#claim.partSize);
      const take = Math.min(want - this.#filled, chunk.byteLength - at);
      this.#fill.set(chunk.subarray(at, at + take), this.#filled);
      this.#filled += take;
      at += take;
      if (this.#filled === want) {
        if (this.#inFlight.length >= this.#maxInFlight) await this.#settleOldest();
        this.#start();
      }
    }
  }

  /**
   * Waits for the parts in flight; with `storeFull`, also stores a buffer that already holds a
   * whole part (a tail kept after a failed store). Throws the first failed store.
   */
  async flush(storeFull: boolean): Promise<void> {
    while (this.#inFlight.length > 0) await this.#settleOldest();
    const full =
      this.#partNumber <= this.#claim.partCount &&
      this.#filled > 0 &&
      this.#filled === expectedPartSize(this.#claim, this.#partNumber);
    if (storeFull && full) {
      this.#start();
      await this.#settleOldest();
    }
  }

  /**
   * The parts stored since the last call, in order, to be recorded: those settled by
   * {@link add} or {@link flush}, and those in flight whose store already succeeded (so a part
   * is recorded soon after it is stored, not only when the in-flight window is full).
   */
  takeStored(): WrittenPart[] {
    for (let first = this.#inFlight[0]; first?.written !== undefined; first = this.#inFlight[0]) {
      this.#inFlight.shift();
      this.#stored.push(first.written);
      this.#buffers.give(first.buffer);
    }
    const stored = this.#stored;
    this.#stored = [];
    return stored;
  }

  /** The bytes past the last stored part (a copy), and the upload offset where they start. */
  tail(): { offset: number; bytes: Buffer } {
    return {
      offset: (this.#partNumber - 1) * this.#claim.partSize,
      bytes: Buffer.from(this.#fill?.subarray(0, this.#filled) ?? EMPTY),
    };
  }

  /** Gives the buffers back; call once, after {@link flush}. */
  release(): void {
    if (this.#fill !== undefined) this.#buffers.give(this.#fill);
    this.#fill = undefined;
    this.#filled = 0;
  }

  #start(): void {
    const partNumber = this.#partNumber;
    const buffer = this.#fill as Buffer;
    const size = this.#filled;
    checkPartLength(size, expectedPartSize(this.#claim, partNumber), "resumable.append");
    const stored = this.#objects
      .putPart(this.#claim.key, this.#claim.uploadId, partNumber, buffer.subarray(0, size))
      .then((part) => ({ partNumber, etag: part.etag, size: part.size }));
    const entry: InFlight = { buffer, size, partNumber, stored };
    stored.then(
      (written) => {
        entry.written = written;
      },
      () => undefined,
    );
    this.#inFlight.push(entry);
    this.#partNumber++;
    this.#fill = undefined;
    this.#filled = 0;
  }

  async #settleOldest(): Promise<void> {
    const oldest = this.#inFlight.shift() as InFlight;
    try {
      this.#stored.push(await oldest.stored);
      this.#buffers.give(oldest.buffer);
    } catch (err) {
      // The failed part stays buffered, so a failed store loses nothing: it becomes the saved
      // tail. The parts after it and what was buffered are dropped (not recorded; a later
      // append sends them again).
      for (const later of this.#inFlight.splice(0)) {
        await later.stored.catch(() => undefined);
        this.#buffers.give(later.buffer);
      }
      if (this.#fill !== undefined) this.#buffers.give(this.#fill);
      this.#partNumber = oldest.partNumber;
      this.#fill = oldest.buffer;
      this.#filled = oldest.size;
      this.received = (oldest.partNumber - 1) * this.#claim.partSize + oldest.size;
      throw err;
    }
  }
}

const EMPTY = Buffer.alloc(0);
