import { randomBytes, randomUUID } from "node:crypto";
import { access, mkdir, readFile, realpath, rename, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError, InvalidKeyError, NotFoundError } from "../errors.js";
import { clockOption, positiveInteger } from "../internal/option-checks.js";
import {
  contentStream,
  isMissing,
  openObjectFile,
  statObjectFile,
  trailerBytes,
  writeAll,
  writeObjectFile,
} from "./file-object-format.js";
import { publish, removeStaleTemps, syncDirectory } from "./file-object-io.js";
import { fileObjectInfo, listObjectFiles, OBJECT_SUFFIX, objectFilePath } from "./file-object-listing.js";
import {
  ASSEMBLY_FILE,
  assemblesInPlace,
  compositeEtag,
  copyApartParts,
  hasPartRecord,
  openAssembly,
  type PartRecord,
  partEtag,
  partRecordPath,
  partsContent,
  readPartRecords,
  recordSlot,
  tryCompletionLock,
  tryPartLock,
  uploadGone,
  writeInPlace,
} from "./file-upload-parts.js";
import { withKeyLock } from "./key-locks.js";
import {
  assertPartList,
  assertPartNumber,
  assertRange,
  checkCompletedParts,
  clampRange,
  partCountLimit,
  positiveSize,
} from "./multipart-rules.js";
import { assertContentLength, bodyChunks, withDeclaredLength } from "./object-body.js";
import { assertListCursor, assertListPrefix, assertObjectKey, listLimit } from "./object-key.js";
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
const MAX_CACHED_UPLOADS = 1000;

interface UploadMeta {
  readonly key: string;
  readonly contentType?: string;
}

/**
 * An {@link ObjectStore} in a local directory: `objects/` holds one file per key, `multipart/`
 * the open uploads, `tmp/` files being written, `locks/` per-key lock files. Etags are the
 * SHA-256 (hex) of the content for `put`; a part's etag is a random version id, new with
 * every write of it; an object completed from parts has the SHA-256 of its parts' etags
 * followed by `-<part count>` (as on S3). Parts are written once:
 * in the usual case (parts of `partSize`, each sent once) they are written in place in the
 * upload's assembly file and completion renames it into place without copying.
 */
export class FileObjectStore implements ObjectStore {
  readonly partSize: number;
  readonly maxPartCount: number;
  readonly #root: string;
  readonly #clock: Clock;
  readonly #staleLockMs: number;
  #ready: Promise<string> | undefined;
  #closed = false;
  readonly #uploads = new Map<string, UploadMeta>();

  constructor(options: FileObjectStoreOptions) {
    if (typeof options?.root !== "string" || options.root === "") {
      throw new InvalidArgumentError(
        `root must be a non-empty string (the store's directory), got ${String(options?.root)}`,
        {
          op: "objects.create",
        },
      );
    }
    this.#root = resolve(options.root);
    this.partSize = positiveSize(options.partSize ?? 4 * 1024 * 1024, "partSize");
    this.maxPartCount = partCountLimit(options.maxPartCount);
    this.#clock = clockOption<Clock>(options.clock, "objects.create", systemClock);
    this.#staleLockMs = positiveInteger(options.staleLockMs, "staleLockMs", "objects.create", 30_000);
  }

  async get(key: string, options: GetOptions = {}): Promise<ObjectBody | null> {
    if (options.range !== undefined) assertRange(options.range, "objects.get");
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

  async put(key: string, input: ObjectBodyInput, options: PutOptions = {}): Promise<{ etag: string }> {
    const op = "objects.put";
    const path = await this.#objectPath(key, op);
    assertPutOptions(options, op);
    const body = withDeclaredLength(input, options.contentLength, op);
    const temp = await this.#tempPath();
    const conditional = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
    let published = false;
    try {
      const bytes =
        typeof body === "string" ? Buffer.from(body, "utf8") : body instanceof Uint8Array ? body : undefined;
      const { etag } = await writeObjectFile(temp, bytes === undefined ? bodyChunks(body, op) : [bytes], {
        lastModified: this.#clock.now(),
        contentType: options.contentType,
      });
      await this.#locked(key, op, async () => {
        this.#open(op);
        // Still under the key lock: a conditional writer's check and rename never straddle this one.
        if (conditional) checkPutCondition(key, (await statObjectFile(path))?.trailer.etag ?? null, options, op);
        await publish(temp, path);
        published = true;
      });
      return { etag };
    } finally {
      if (!published) await unlink(temp).catch(() => undefined);
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
    assertListCursor(options.cursor, op);
    const limit = listLimit(options.limit, op);
    const root = await this.#init(op);
    const found = await listObjectFiles(join(root, "objects"), prefix, options.cursor, limit + 1);
    const objects = found.slice(0, limit);
    return found.length > limit ? { objects, cursor: (objects[objects.length - 1] as ObjectInfo).key } : { objects };
  }

  async initMultipart(key: string, options: { contentType?: string } = {}): Promise<string> {
    const op = "objects.initMultipart";
    await this.#objectPath(key, op);
    assertContentType(options.contentType, op);
    const uploadId = randomBytes(16).toString("hex");
    const dir = join(this.#rootSync(), "multipart", uploadId);
    await mkdir(dir);
    const meta: UploadMeta = {
      key,
      ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
    };
    await writeFile(join(dir, "upload.json"), JSON.stringify(meta));
    this.#uploads.set(uploadId, meta);
    return uploadId;
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    input: ObjectBodyInput,
    options: { contentLength?: number } = {},
  ): Promise<{ etag: string; size: number }> {
    const op = "objects.putPart";
    await this.#objectPath(key, op);
    assertPartNumber(partNumber, this.maxPartCount, op);
    assertContentLength(options.contentLength, op);
    const body = withDeclaredLength(input, options.contentLength, op);
    const dir = await this.#uploadDir(key, uploadId, op);
    const lock = await tryPartLock(dir, partNumber, op);
    if (lock !== null) {
      try {
        if (!(await hasPartRecord(dir, partNumber, op))) {
          const offset = (partNumber - 1) * this.partSize;
          const written = await writeInPlace(dir, offset, this.partSize, body, op);
          if ("overflow" in written) return await this.#putPartApart(dir, partNumber, written.overflow, op);
          await recordSlot(dir, { partNumber, offset, ...written }, op);
          return written;
        }
      } finally {
        await lock.release();
      }
    }
    return this.#putPartApart(dir, partNumber, bodyChunks(body, op), op);
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
    assertPartList(parts, op);
    const { dir, meta } = await this.#upload(key, uploadId, op);
    const recorded = await this.#recordedParts(dir, parts, op);
    const ordered = checkCompletedParts(parts, recorded, this.partSize, op);
    const trailer = { etag: compositeEtag(ordered), lastModified: this.#clock.now(), contentType: meta.contentType };
    const size = ordered.reduce((sum, part) => sum + part.size, 0);
    const target = { key, uploadId, path, dir, options, op };
    const published = await this.#publishedAlready(key, dir, ordered, trailer.etag);
    if (published !== null) return published;
    const lock = await tryCompletionLock(dir, op);
    if (lock !== null) {
      try {
        if (await assemblesInPlace(dir, ordered)) {
          const assembly = await openAssembly(dir, ordered, op);
          try {
            await copyApartParts(assembly, dir, ordered, op);
            await this.#publishUpload(target, async () => {
              await assembly.truncate(size);
              await writeAll(assembly, trailerBytes(trailer), size);
              await assembly.sync();
              return join(dir, ASSEMBLY_FILE);
            });
          } finally {
            await assembly.close();
          }
          return fileObjectInfo(key, { trailer, size });
        }
      } finally {
        await lock.release();
      }
    }
    const temp = await this.#tempPath();
    try {
      await writeObjectFile(temp, partsContent(dir, ordered, op), trailer);
      await this.#publishUpload(target, async () => temp);
      return fileObjectInfo(key, { trailer, size });
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

  async #recordedParts(dir: string, parts: readonly CompletedPart[], op: string): Promise<Map<number, PartRecord>> {
    assertPartList(parts, op);
    return readPartRecords(dir, op);
  }

  /** Stores a part in its own record file (content and trailer): written aside, renamed over the part's record, folder synced. */
  async #putPartApart(
    dir: string,
    partNumber: number,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    op: string,
  ): Promise<{ etag: string; size: number }> {
    const temp = await this.#tempPath();
    try {
      const result = await writeObjectFile(temp, chunks, { etag: partEtag(), lastModified: this.#clock.now() });
      // The upload folder vanishing (complete or abort in between) makes the rename fail.
      await rename(temp, partRecordPath(dir, partNumber)).catch((err) => {
        if (isMissing(err)) throw uploadGone(op);
        throw err;
      });
      await syncDirectory(dir).catch((err) => {
        if (isMissing(err)) throw uploadGone(op);
        throw err;
      });
      return result;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /**
   * Under the key lock: checks the upload is still open and the completion's conditions, then
   * lets `finish` produce the finished file and publishes it and discards the upload.
   */
  async #publishUpload(
    target: { key: string; uploadId: string; path: string; dir: string; options: CompleteMultipartOptions; op: string },
    finish: () => Promise<string>,
  ): Promise<void> {
    const { key, uploadId, path, dir, options, op } = target;
    await this.#locked(key, op, async () => {
      await this.#uploadDir(key, uploadId, op, true);
      // Checked under the key lock every writer of this key takes, so check and publish are atomic.
      checkPutCondition(key, (await statObjectFile(path))?.trailer.etag ?? null, options, op);
      await publish(await finish(), path);
      await this.#discardUpload(dir);
    });
  }

  /**
   * A completion that published the assembly file and stopped (a crash) before removing the
   * upload folder leaves the records without their bytes: the object under the key, with the
   * etag these parts make, is that completion's result. It is returned and the folder removed.
   */
  async #publishedAlready(key: string, dir: string, ordered: readonly PartRecord[], etag: string) {
    if (ordered.every((part) => part.offset === undefined)) return null;
    if (
      await access(join(dir, ASSEMBLY_FILE)).then(
        () => true,
        () => false,
      )
    )
      return null;
    const current = await this.head(key);
    if (current?.etag !== etag) return null;
    await this.#locked(key, "objects.completeMultipart", () => this.#discardUpload(dir));
    return current;
  }

  async #uploadDir(key: string, uploadId: string, op: string, fresh = false): Promise<string> {
    return (await this.#upload(key, uploadId, op, fresh)).dir;
  }

  /**
   * The folder and metadata of an open upload of `key`. Metadata never changes, so it is
   * cached; an upload removed meanwhile (by another process too) fails the caller's next
   * file operation in its folder. `fresh` checks the folder still exists.
   */
  async #upload(key: string, uploadId: string, op: string, fresh = false): Promise<{ dir: string; meta: UploadMeta }> {
    const missing = () =>
      new NotFoundError(`no open multipart upload ${JSON.stringify(uploadId)} for this key`, { op });
    if (typeof uploadId !== "string" || !UPLOAD_ID.test(uploadId)) throw missing();
    const dir = join(this.#rootSync(), "multipart", uploadId);
    let meta = this.#uploads.get(uploadId);
    if (meta === undefined) {
      const text = await readFile(join(dir, "upload.json"), "utf8").catch((err) => {
        if (isMissing(err)) throw missing();
        throw err;
      });
      meta = JSON.parse(text) as UploadMeta;
      if (this.#uploads.size >= MAX_CACHED_UPLOADS) this.#uploads.delete(this.#uploads.keys().next().value as string);
      this.#uploads.set(uploadId, meta);
    } else if (fresh) {
      await access(join(dir, "upload.json")).catch((err) => {
        if (isMissing(err)) {
          this.#uploads.delete(uploadId);
          throw missing();
        }
        throw err;
      });
    }
    if (meta.key !== key) throw missing();
    return { dir, meta };
  }

  async #discardUpload(dir: string): Promise<void> {
    this.#uploads.delete(basename(dir));
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
