import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, realpath, rename, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError, InvalidKeyError, NotFoundError } from "../errors.js";
import { positiveInteger } from "../internal/option-checks.js";
import { contentStream, isMissing, openObjectFile, statObjectFile, writeObjectFile } from "./file-object-format.js";
import { concatParts, publish, removeStaleTemps } from "./file-object-io.js";
import { fileObjectInfo, listObjectFiles, OBJECT_SUFFIX, objectFilePath } from "./file-object-listing.js";
import { withKeyLock } from "./key-locks.js";
import {
  assertPartNumber,
  checkCompletedParts,
  clampRange,
  partCountLimit,
  positiveSize,
  type RecordedPart,
} from "./multipart-rules.js";
import { bodyChunks } from "./object-body.js";
import { assertListPrefix, assertObjectKey, listLimit } from "./object-key.js";
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
import { assertPutOptions, checkPutCondition } from "./put-condition.js";

/** Options of {@link FileObjectStore}. */
export interface FileObjectStoreOptions {
  /** Directory the store owns (created if missing). */
  root: string;
  /** Minimum size of non-final multipart parts. Default 4 MiB. */
  partSize?: number;
  /** Most parts per upload. Default `Infinity`. */
  maxPartCount?: number;
  /** Source of `lastModified`. Default the system clock. */
  clock?: Clock;
  /** A key lock file older than this (ms) is treated as left by a crashed process. Default 30,000. */
  staleLockMs?: number;
}

const MAX_SEGMENT_BYTES = 255 - OBJECT_SUFFIX.length;
const UPLOAD_ID = /^[0-9a-f]{32}$/;
// Temp files this old were left by a crashed writer (no write takes a day); removed on open.
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

interface UploadMeta {
  readonly key: string;
  readonly contentType?: string;
}

/**
 * An {@link ObjectStore} in a local directory: `objects/` holds one file per key, `multipart/`
 * the open uploads, `tmp/` files being written, `locks/` per-key lock files. Etags are SHA-256
 * hex of the content.
 */
export class FileObjectStore implements ObjectStore {
  readonly partSize: number;
  readonly maxPartCount: number;
  readonly #root: string;
  readonly #clock: Clock;
  readonly #staleLockMs: number;
  #ready: Promise<string> | undefined;
  #closed = false;

  constructor(options: FileObjectStoreOptions) {
    if (typeof options?.root !== "string" || options.root === "")
      throw new InvalidArgumentError("FileObjectStore needs a root directory");
    this.#root = resolve(options.root);
    this.partSize = positiveSize(options.partSize ?? 4 * 1024 * 1024, "partSize");
    this.maxPartCount = partCountLimit(options.maxPartCount);
    this.#clock = options.clock ?? systemClock;
    this.#staleLockMs = positiveInteger(options.staleLockMs, "staleLockMs", "objects.create", 30_000);
  }

  async get(key: string, options: GetOptions = {}): Promise<ObjectBody | null> {
    const path = await this.#objectPath(key, "objects.get");
    const opened = await openObjectFile(path);
    if (!opened) return null;
    if (options.range === undefined) return { ...fileObjectInfo(key, opened), body: contentStream(opened) };
    let range: { start: number; end: number };
    try {
      range = clampRange(options.range, opened.size, "objects.get");
    } catch (err) {
      await opened.handle.close();
      throw err;
    }
    return { ...fileObjectInfo(key, opened), range, body: contentStream(opened, range) };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const found = await statObjectFile(await this.#objectPath(key, "objects.head"));
    return found ? fileObjectInfo(key, found) : null;
  }

  async put(key: string, body: ObjectBodyInput, options: PutOptions = {}): Promise<{ etag: string }> {
    const op = "objects.put";
    const path = await this.#objectPath(key, op);
    assertPutOptions(options, op);
    const temp = await this.#tempPath();
    try {
      const { etag } = await writeObjectFile(temp, bodyChunks(body, op), {
        lastModified: this.#clock.now(),
        contentType: options.contentType,
      });
      await this.#locked(key, op, async () => {
        this.#open(op);
        checkPutCondition(key, (await statObjectFile(path))?.trailer.etag ?? null, options, op);
        await publish(temp, path);
      });
      return { etag };
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async delete(key: string): Promise<void> {
    const op = "objects.delete";
    const path = await this.#objectPath(key, op);
    await this.#locked(key, op, async () => {
      await unlink(path).catch((err) => {
        if (!isMissing(err)) throw err;
      });
    });
    await this.#pruneEmptyDirs(dirname(path));
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "objects.list";
    this.#open(op);
    assertListPrefix(prefix, op);
    const limit = listLimit(options.limit, op);
    const root = await this.#init(op);
    const found = await listObjectFiles(join(root, "objects"), prefix, options.cursor, limit + 1);
    const objects = found.slice(0, limit);
    return found.length > limit ? { objects, cursor: (objects[objects.length - 1] as ObjectInfo).key } : { objects };
  }

  async initMultipart(key: string, options: { contentType?: string } = {}): Promise<string> {
    const op = "objects.initMultipart";
    await this.#objectPath(key, op);
    const uploadId = randomBytes(16).toString("hex");
    const dir = join(this.#rootSync(), "multipart", uploadId);
    await mkdir(dir);
    const meta: UploadMeta = {
      key,
      ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
    };
    await writeFile(join(dir, "upload.json"), JSON.stringify(meta));
    return uploadId;
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
  ): Promise<{ etag: string; size: number }> {
    const op = "objects.putPart";
    await this.#objectPath(key, op);
    assertPartNumber(partNumber, this.maxPartCount, op);
    const dir = await this.#uploadDir(key, uploadId, op);
    const temp = await this.#tempPath();
    try {
      const result = await writeObjectFile(temp, bodyChunks(body, op), { lastModified: this.#clock.now() });
      // The upload folder vanishing (complete or abort in between) makes the rename fail.
      await rename(temp, join(dir, `${partNumber}.part`)).catch((err) => {
        if (isMissing(err)) throw new NotFoundError(`multipart upload ${uploadId} is no longer open`, { op });
        throw err;
      });
      return result;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options: CompleteMultipartOptions = {},
  ): Promise<ObjectInfo> {
    const op = "objects.completeMultipart";
    const path = await this.#objectPath(key, op);
    assertPutOptions(options, op);
    const dir = await this.#uploadDir(key, uploadId, op);
    const meta = JSON.parse(await readFile(join(dir, "upload.json"), "utf8")) as UploadMeta;
    const recorded = await this.#recordedParts(dir, parts, op);
    const ordered = checkCompletedParts(parts, recorded, this.partSize, op);
    const temp = await this.#tempPath();
    try {
      const lastModified = this.#clock.now();
      const files = ordered.map((part, i) => ({ path: join(dir, `${i + 1}.part`), etag: part.etag }));
      const written = await writeObjectFile(temp, concatParts(files, op), {
        lastModified,
        contentType: meta.contentType,
      });
      await this.#locked(key, op, async () => {
        await this.#uploadDir(key, uploadId, op);
        // Checked under the key lock every writer of this key takes, so check and publish are atomic.
        checkPutCondition(key, (await statObjectFile(path))?.trailer.etag ?? null, options, op);
        await publish(temp, path);
        await this.#discardUpload(dir);
      });
      return fileObjectInfo(key, {
        trailer: { ...written, lastModified, contentType: meta.contentType },
        size: written.size,
      });
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const op = "objects.abortMultipart";
    await this.#objectPath(key, op);
    await this.#locked(key, op, async () => {
      const dir = await this.#uploadDir(key, uploadId, op).catch((err) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      if (dir) await this.#discardUpload(dir);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  async #recordedParts(dir: string, parts: readonly CompletedPart[], op: string): Promise<Map<number, RecordedPart>> {
    if (!Array.isArray(parts)) throw new InvalidArgumentError("parts must be an array", { op });
    const numbers = [...new Set(parts.map((p) => p.partNumber))].filter((n) => Number.isInteger(n) && n >= 1);
    const recorded = new Map<number, RecordedPart>();
    for (const n of numbers) {
      const file = await statObjectFile(join(dir, `${n}.part`));
      if (file) recorded.set(n, { etag: file.trailer.etag, size: file.size });
    }
    return recorded;
  }

  async #uploadDir(key: string, uploadId: string, op: string): Promise<string> {
    const missing = () =>
      new NotFoundError(`no open multipart upload ${JSON.stringify(uploadId)} for this key`, { op });
    if (typeof uploadId !== "string" || !UPLOAD_ID.test(uploadId)) throw missing();
    const dir = join(this.#rootSync(), "multipart", uploadId);
    const meta = await readFile(join(dir, "upload.json"), "utf8").catch((err) => {
      if (isMissing(err)) throw missing();
      throw err;
    });
    if ((JSON.parse(meta) as UploadMeta).key !== key) throw missing();
    return dir;
  }

  async #discardUpload(dir: string): Promise<void> {
    // Renamed away first so a concurrent putPart cannot land in a half-deleted folder.
    const grave = join(this.#rootSync(), "tmp", `discard-${randomUUID()}`);
    try {
      await rename(dir, grave);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    await rm(grave, { recursive: true, force: true });
  }

  async #pruneEmptyDirs(dir: string): Promise<void> {
    const stop = join(this.#rootSync(), "objects");
    for (let current = dir; current.length > stop.length && current.startsWith(stop); current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }

  #locked<T>(key: string, op: string, fn: () => Promise<T>): Promise<T> {
    const root = this.#rootSync();
    return withKeyLock(
      { root, lockDir: join(root, "locks"), staleLockMs: this.#staleLockMs, waitMs: 60_000 },
      key,
      op,
      fn,
    );
  }

  async #objectPath(key: string, op: string): Promise<string> {
    this.#open(op);
    assertObjectKey(key, op);
    const segments = key.split("/");
    for (const segment of segments) {
      if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
        throw new InvalidKeyError(`object key segments are limited to ${MAX_SEGMENT_BYTES} bytes on the filesystem`, {
          op,
        });
      }
    }
    const root = await this.#init(op);
    return objectFilePath(join(root, "objects"), segments);
  }

  async #tempPath(): Promise<string> {
    return join(this.#rootSync(), "tmp", `${randomUUID()}.tmp`);
  }

  #rootSync(): string {
    return this.#realRoot as string;
  }

  #realRoot: string | undefined;

  async #init(op: string): Promise<string> {
    this.#open(op);
    this.#ready ??= (async () => {
      for (const sub of ["objects", "multipart", "tmp", "locks"])
        await mkdir(join(this.#root, sub), { recursive: true });
      this.#realRoot = await realpath(this.#root);
      await removeStaleTemps(join(this.#realRoot, "tmp"), Date.now() - STALE_TEMP_MS);
      return this.#realRoot;
    })();
    try {
      return await this.#ready;
    } catch (err) {
      this.#ready = undefined;
      throw err;
    }
  }

  #open(op: string): void {
    if (this.#closed) throw new ClosedError("object store is closed", { op });
  }
}
