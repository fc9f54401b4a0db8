import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { CorruptDatabaseError, isStoreError } from "../errors.js";
import type { CompletedPart, ObjectStore } from "../objects/index.js";
import type { SnapshotEntry } from "./manifest.js";
import { decodeManifest, decodePack, encodeManifest, type LogItem, type Manifest } from "./manifest.js";
import { packItem } from "./manifest-log.js";
import { MANIFEST_NAME, packName, segmentName, snapshotName } from "./replica-layout.js";
import { decodeSegment, encodeSegment, lastTxid, type Segment } from "./segment-codec.js";
import { readSnapshotInto, type SnapshotFile } from "./snapshot-file.js";

/** A manifest as read, with the etag to condition the next write on. */
export interface StoredManifest {
  readonly manifest: Manifest;
  readonly etag: string;
}

/** Bytes written by one call, for the replication counters. */
export interface Written {
  readonly bytes: number;
}

/**
 * The objects of one tenant under its prefix: reads verify digests and shapes; writes of
 * snapshots, segments and packs go to keys no other content can have, and only the manifest is
 * written in place, conditionally.
 */
export class ReplicaObjects {
  readonly store: ObjectStore;
  readonly prefix: string;
  readonly writer: string;
  readonly #multipartBytes: number;

  constructor(store: ObjectStore, prefix: string, writer: string, multipartBytes: number) {
    this.store = store;
    this.prefix = prefix;
    this.writer = writer;
    this.#multipartBytes = multipartBytes;
  }

  get manifestKey(): string {
    return this.prefix + MANIFEST_NAME;
  }

  /** The current manifest, or `null` when the tenant has none. */
  async readManifest(): Promise<StoredManifest | null> {
    const object = await this.store.get(this.manifestKey);
    if (object === null) return null;
    const bytes = await readAll(object.body);
    return { manifest: decodeManifest(bytes, this.manifestKey), etag: object.etag };
  }

  /**
   * Publishes `manifest` if the stored one still has `expectedEtag` (`null`: if there is none).
   * Throws the store's {@link ConflictError} otherwise.
   */
  async writeManifest(manifest: Manifest, expectedEtag: string | null): Promise<{ etag: string; bytes: number }> {
    const body = encodeManifest(manifest);
    const condition = expectedEtag === null ? { ifNoneMatch: "*" as const } : { ifMatch: expectedEtag };
    const { etag } = await this.store.put(this.manifestKey, body, {
      ...condition,
      contentType: "application/json",
      contentLength: body.byteLength,
    });
    return { etag, bytes: body.byteLength };
  }

  /** Encodes and stores a segment; returns its log item. */
  async writeSegment(segment: Segment, time: number): Promise<LogItem> {
    const body = await encodeSegment(segment);
    const sha256 = sha(body);
    const last = lastTxid(segment);
    const key = segmentName(segment.firstTxid, last, this.writer, sha256);
    await this.store.put(this.prefix + key, body, { contentType: "application/gzip", contentLength: body.byteLength });
    return { level: 0, key, first: segment.firstTxid, last, bytes: body.byteLength, count: 1, time, sha256 };
  }

  /** Downloads, verifies and decodes the segment a level-0 item names. */
  async readSegment(item: LogItem): Promise<Segment> {
    const bytes = await this.#readVerified(item.key, item.sha256);
    const segment = await decodeSegment(bytes, this.prefix + item.key);
    if (segment.firstTxid !== item.first || lastTxid(segment) !== item.last) {
      throw corrupt(`${this.prefix + item.key} does not hold transactions ${item.first}..${item.last}`);
    }
    return segment;
  }

  /** Stores a pack of `items` (one level below `level`); returns the item naming it. */
  async writePack(level: number, items: readonly LogItem[]): Promise<LogItem> {
    const body = Buffer.from(JSON.stringify(items));
    const sha256 = sha(body);
    const first = (items[0] as LogItem).first;
    const last = (items[items.length - 1] as LogItem).last;
    const key = packName(level, first, last, this.writer, sha256);
    await this.store.put(this.prefix + key, body, { contentType: "application/json", contentLength: body.byteLength });
    return packItem(level, items, key, sha256);
  }

  /** Opens a pack, checking its digest and that it holds its range one level down. */
  async readPack(item: LogItem): Promise<LogItem[]> {
    const bytes = await this.#readVerified(item.key, item.sha256);
    const items = decodePack(bytes, this.prefix + item.key);
    const ok =
      items.every((i) => i.level === item.level - 1) &&
      (items[0] as LogItem).first === item.first &&
      (items[items.length - 1] as LogItem).last === item.last;
    if (!ok) throw corrupt(`${this.prefix + item.key} does not hold what its log item names`);
    return items;
  }

  /** Uploads a snapshot file (in parts when large); returns its manifest entry. */
  async writeSnapshot(
    file: string,
    info: SnapshotFile,
    txid: number,
    generation: string,
    time: number,
  ): Promise<SnapshotEntry> {
    const key = snapshotName(txid, generation, randomBytes(4).toString("hex"));
    const { size } = await stat(file);
    const objectKey = this.prefix + key;
    const contentType = "application/gzip";
    if (size < this.#multipartBytes) {
      await this.store.put(objectKey, createReadStream(file), { contentType, contentLength: size });
    } else {
      const partBytes = Math.max(this.store.partSize, Math.ceil(size / Math.min(this.store.maxPartCount, 10_000)));
      const uploadId = await this.store.initMultipart(objectKey, { contentType });
      try {
        const parts: CompletedPart[] = [];
        for (let start = 0, partNumber = 1; start < size; start += partBytes, partNumber++) {
          const length = Math.min(partBytes, size - start);
          const body = createReadStream(file, { start, end: start + length - 1 });
          const { etag } = await this.store.putPart(objectKey, uploadId, partNumber, body, { contentLength: length });
          parts.push({ partNumber, etag });
        }
        await this.store.completeMultipart(objectKey, uploadId, parts);
      } catch (err) {
        // The upload's own error is the one to report; a failed abort only leaves parts for the backend's expiry.
        await this.store.abortMultipart(objectKey, uploadId).catch(() => undefined);
        throw err;
      }
    }
    return { key, txid, pages: info.pages, bytes: info.bytes, sha256: info.sha256, time, generation };
  }

  /** Downloads a snapshot into `path` (digest, size and header checked). */
  async readSnapshot(entry: SnapshotEntry, pageSize: number, path: string): Promise<void> {
    const object = await this.store.get(this.prefix + entry.key);
    if (object === null) throw missing(this.prefix + entry.key);
    await readSnapshotInto(object.body, path, {
      sha256: entry.sha256,
      pages: entry.pages,
      pageSize,
      name: this.prefix + entry.key,
    });
  }

  async #readVerified(key: string, sha256: string): Promise<Buffer> {
    const object = await this.store.get(this.prefix + key);
    if (object === null) throw missing(this.prefix + key);
    const bytes = await readAll(object.body);
    if (sha(bytes) !== sha256) throw corrupt(`${this.prefix + key} fails its checksum`);
    return bytes;
  }
}

/** True when `err` is the store's refusal of a conditional write. */
export function isConflict(err: unknown): boolean {
  return isStoreError(err, "CONFLICT");
}

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function corrupt(message: string): CorruptDatabaseError {
  return new CorruptDatabaseError(message, { op: "tenants.restore" });
}

function missing(key: string): CorruptDatabaseError {
  return new CorruptDatabaseError(`${key} is named by the manifest but missing from object storage`, {
    op: "tenants.restore",
  });
}
