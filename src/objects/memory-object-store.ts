import { createHash, randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, NotFoundError } from "../errors.js";
import { clockOption } from "../internal/option-checks.js";
import {
  assertPartList,
  assertPartNumber,
  assertRange,
  checkCompletedParts,
  clampRange,
  partCountLimit,
  positiveSize,
  type RecordedPart,
} from "./multipart-rules.js";
import { assertContentLength, bufferStream, readBody, withDeclaredLength } from "./object-body.js";
import { assertListCursor, assertListPrefix, assertObjectKey, compareKeys, listLimit } from "./object-key.js";
import type {
  CompletedPart,
  CompleteMultipartOptions,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectBody,
  ObjectBodyInput,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from "./object-store.js";
import { assertContentType, assertPutOptions, checkPutCondition } from "./put-condition.js";

/** Options of {@link MemoryObjectStore}. */
export interface MemoryObjectStoreOptions {
  /** Minimum size of non-final multipart parts. Default 64 KiB. */
  partSize?: number;
  /** Most parts per upload. Default `Infinity`. */
  maxPartCount?: number;
  /** Source of `lastModified`. Default the system clock. */
  clock?: Clock;
}

interface StoredObject {
  readonly info: ObjectInfo;
  readonly bytes: Buffer;
}

interface Upload {
  readonly key: string;
  readonly contentType: string | undefined;
  readonly parts: Map<number, RecordedPart & { bytes: Buffer }>;
}

/** An {@link ObjectStore} in process memory: for tests and ephemeral servers. Etags are SHA-256 hex of the content. */
export class MemoryObjectStore implements ObjectStore {
  readonly partSize: number;
  readonly maxPartCount: number;
  readonly #clock: Clock;
  readonly #objects = new Map<string, StoredObject>();
  readonly #uploads = new Map<string, Upload>();
  #closed = false;

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.partSize = positiveSize(options.partSize ?? 64 * 1024, "partSize");
    this.maxPartCount = partCountLimit(options.maxPartCount);
    this.#clock = clockOption<Clock>(options.clock, "objects.create", systemClock);
  }

  async get(key: string, options: GetOptions = {}): Promise<ObjectBody | null> {
    this.#check(key, "objects.get");
    if (options.range !== undefined) assertRange(options.range, "objects.get");
    const found = this.#objects.get(key);
    if (!found) return null;
    if (options.range === undefined) return { ...found.info, body: bufferStream(found.bytes) };
    const range = clampRange(options.range, found.info.size, "objects.get");
    return { ...found.info, range, body: bufferStream(found.bytes.subarray(range.start, range.end)) };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    this.#check(key, "objects.head");
    return this.#objects.get(key)?.info ?? null;
  }

  async put(key: string, body: ObjectBodyInput, options: PutOptions = {}): Promise<{ etag: string }> {
    const op = "objects.put";
    this.#check(key, op);
    assertPutOptions(options, op);
    const bytes = await readBody(withDeclaredLength(body, options.contentLength, op), op);
    this.#open(op);
    // The condition is checked after the body is read, in the same synchronous step as the write.
    checkPutCondition(key, this.#objects.get(key)?.info.etag ?? null, options, op);
    return { etag: this.#store(key, bytes, options.contentType).etag };
  }

  async delete(key: string): Promise<void> {
    this.#check(key, "objects.delete");
    this.#objects.delete(key);
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "objects.list";
    this.#open(op);
    assertListPrefix(prefix, op);
    assertListCursor(options.cursor, op);
    const limit = listLimit(options.limit, op);
    const keys = [...this.#objects.keys()]
      .filter((key) => key.startsWith(prefix) && (options.cursor === undefined || compareKeys(key, options.cursor) > 0))
      .sort(compareKeys);
    const page = keys.slice(0, limit);
    const objects = page.map((key) => (this.#objects.get(key) as StoredObject).info);
    return keys.length > limit ? { objects, cursor: page[page.length - 1] as string } : { objects };
  }

  async initMultipart(key: string, options: { contentType?: string } = {}): Promise<string> {
    this.#check(key, "objects.initMultipart");
    assertContentType(options.contentType, "objects.initMultipart");
    const uploadId = randomUUID();
    this.#uploads.set(uploadId, { key, contentType: options.contentType, parts: new Map() });
    return uploadId;
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
    options: { contentLength?: number } = {},
  ): Promise<{ etag: string; size: number }> {
    const op = "objects.putPart";
    this.#check(key, op);
    assertPartNumber(partNumber, this.maxPartCount, op);
    assertContentLength(options.contentLength, op);
    this.#upload(key, uploadId, op);
    const bytes = await readBody(withDeclaredLength(body, options.contentLength, op), op);
    // Re-checked: the upload may have been completed or aborted while the body streamed in.
    const upload = this.#upload(key, uploadId, op);
    const part = { etag: sha256(bytes), size: bytes.byteLength, bytes };
    upload.parts.set(partNumber, part);
    return { etag: part.etag, size: part.size };
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options: CompleteMultipartOptions = {},
  ): Promise<ObjectInfo> {
    const op = "objects.completeMultipart";
    this.#check(key, op);
    assertPutOptions(options, op);
    assertPartList(parts, op);
    const upload = this.#upload(key, uploadId, op);
    const ordered = checkCompletedParts(parts, upload.parts, this.partSize, op) as (RecordedPart & { bytes: Buffer })[];
    checkPutCondition(key, this.#objects.get(key)?.info.etag ?? null, options, op);
    this.#uploads.delete(uploadId);
    return this.#store(key, Buffer.concat(ordered.map((part) => part.bytes)), upload.contentType);
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    this.#check(key, "objects.abortMultipart");
    if (this.#uploads.get(uploadId)?.key === key) this.#uploads.delete(uploadId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#objects.clear();
    this.#uploads.clear();
  }

  #store(key: string, bytes: Buffer, contentType: string | undefined): ObjectInfo {
    const info: ObjectInfo = {
      key,
      size: bytes.byteLength,
      etag: sha256(bytes),
      lastModified: this.#clock.now(),
      ...(contentType === undefined ? {} : { contentType }),
    };
    this.#objects.set(key, { info, bytes });
    return info;
  }

  #upload(key: string, uploadId: string, op: string): Upload {
    const upload = this.#uploads.get(uploadId);
    if (!upload || upload.key !== key)
      throw new NotFoundError(`no open multipart upload ${JSON.stringify(uploadId)} for this key`, { op });
    return upload;
  }

  #check(key: string, op: string): void {
    this.#open(op);
    assertObjectKey(key, op);
  }

  #open(op: string): void {
    if (this.#closed) throw new ClosedError("object store is closed", { op });
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
