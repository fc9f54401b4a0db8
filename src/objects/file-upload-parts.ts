import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, type FileHandle, open, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import { fileChunks, isMissing, openObjectFile, statObjectFile, writeAll, writeAllv } from "./file-object-format.js";
import { syncDirectory } from "./file-object-io.js";
import type { RecordedPart } from "./multipart-rules.js";
import { bodyChunks } from "./object-body.js";
import type { ObjectBodyInput } from "./object-store.js";

/*
 * An open multipart upload of FileObjectStore is a folder `multipart/<uploadId>/` holding
 * `upload.json` (key and content type), the assembly file `data`, one record per stored part,
 * a lock `<n>.lock` per part being written in place, and `completing` while a completion
 * assembles in place. A part written in place is recorded by an empty file whose name says
 * where its bytes are, `<n>.slot.<offset>.<size>.<etag>` (durable with one sync of the folder,
 * no file content to sync); a part stored apart by its own file `<n>.part` (content plus
 * trailer, like an object), which takes precedence.
 *
 * Why an assembly file: a part is written once, in place at `(n - 1) * partSize` of `data`,
 * and its record only says where. When every part sits where the object needs it, completion
 * appends the trailer and renames `data` into place instead of writing every byte a second
 * time. A part that cannot go in place is stored apart and completion copies just those
 * parts: when another writer holds
 * its lock, when its part number already has a record (an accepted part is never overwritten
 * by a re-send that may still fail), when a completion is assembling, or when it is larger
 * than `partSize`.
 *
 * The invariant that keeps this safe: the region of part n in `data` is written only by the
 * holder of `<n>.lock`, and only while no record of n exists; a part keeps a record from
 * then on (an apart record replaces an older one and outranks the in-place one) until the
 * upload is discarded. A writer creates its lock and then checks for
 * `completing`; completion creates `completing` and then checks for part locks. So either
 * the writer sees the marker (and writes apart) or completion sees the lock (and copies), and
 * `data` is renamed into place only when no writer can still touch it. Locks are taken
 * without waiting and never broken: one left by a crashed process only sends that part's
 * re-send and the upload's completion down the copying path.
 */

/** File name of an upload's assembly file inside its folder. */
export const ASSEMBLY_FILE = "data";
const COMPLETION_MARKER = "completing";
const PART_LOCK = /^\d+\.lock$/;

/** A stored part: its etag and size, and where its bytes are. */
export interface PartRecord extends RecordedPart {
  readonly partNumber: number;
  /** Offset of the bytes in the assembly file; absent when they are the record file's own content. */
  readonly offset?: number;
}

/** Path of part `partNumber`'s apart record (its own file) in the upload folder `dir`. */
export function partRecordPath(dir: string, partNumber: number): string {
  return join(dir, `${partNumber}.part`);
}

/** File name of the record of a part written in place. */
export function slotRecordName(part: PartRecord & { offset: number }): string {
  return `${part.partNumber}.slot.${part.offset}.${part.size}.${part.etag}`;
}

const APART_RECORD = /^(\d+)\.part$/;
const SLOT_RECORD = /^(\d+)\.slot\.(\d+)\.(\d+)\.([0-9a-f]+)$/;

/** The current records of the upload folder `dir` by part number (an apart record outranks an in-place one). */
export async function readPartRecords(dir: string, op: string): Promise<Map<number, PartRecord>> {
  const names = await readdir(dir).catch((err) => {
    if (isMissing(err)) throw uploadGone(op);
    throw err;
  });
  const records = new Map<number, PartRecord>();
  for (const name of names) {
    const slot = SLOT_RECORD.exec(name);
    if (slot === null) continue;
    const partNumber = Number(slot[1]);
    records.set(partNumber, { partNumber, offset: Number(slot[2]), size: Number(slot[3]), etag: slot[4] as string });
  }
  for (const name of names) {
    const apart = APART_RECORD.exec(name);
    if (apart === null) continue;
    const partNumber = Number(apart[1]);
    const found = await statObjectFile(join(dir, name));
    if (found) records.set(partNumber, { partNumber, etag: found.trailer.etag, size: found.size });
  }
  return records;
}

/** Whether part `partNumber` has a record. */
export async function hasPartRecord(dir: string, partNumber: number, op: string): Promise<boolean> {
  const names = await readdir(dir).catch((err) => {
    if (isMissing(err)) throw uploadGone(op);
    throw err;
  });
  const prefix = `${partNumber}.`;
  return names.some((name) => name.startsWith(prefix) && (name === `${partNumber}.part` || SLOT_RECORD.test(name)));
}

/** A lock file taken without waiting; `release` removes it (a folder gone meanwhile is fine). */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes the lock to write part `partNumber` in place: `null` when another writer holds it or
 * a completion is assembling. A folder gone -> NotFoundError.
 */
export async function tryPartLock(dir: string, partNumber: number, op: string): Promise<HeldLock | null> {
  const lock = await createLock(join(dir, `${partNumber}.lock`), op);
  if (lock === null) return null;
  if (await exists(join(dir, COMPLETION_MARKER))) {
    await lock.release();
    return null;
  }
  return lock;
}

/**
 * Takes the right to assemble in place: `null` when another completion holds it or a part is
 * being written in place. A folder gone -> NotFoundError.
 */
export async function tryCompletionLock(dir: string, op: string): Promise<HeldLock | null> {
  const lock = await createLock(join(dir, COMPLETION_MARKER), op);
  if (lock === null) return null;
  if ((await readdir(dir)).some((name) => PART_LOCK.test(name))) {
    await lock.release();
    return null;
  }
  return lock;
}

async function createLock(path: string, op: string): Promise<HeldLock | null> {
  try {
    await (await open(path, "wx")).close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return null;
    if (isMissing(err)) throw uploadGone(op);
    throw err;
  }
  return { release: () => unlink(path).catch(() => undefined) };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    (err) => {
      if (isMissing(err)) return false;
      throw err;
    },
  );
}

/**
 * Opens the assembly file of the upload folder `dir` for reading and writing. Without
 * `inPlace` parts it is created when missing; with them it must exist and hold their bytes,
 * else {@link InvalidArgumentError} (a new empty file would publish zeros).
 */
export async function openAssembly(dir: string, inPlace: readonly PartRecord[], op: string): Promise<FileHandle> {
  const end = Math.max(0, ...inPlace.map((p) => (p.offset === undefined ? 0 : p.offset + p.size)));
  const create = inPlace.every((p) => p.offset === undefined);
  let handle: FileHandle;
  try {
    handle = await open(join(dir, ASSEMBLY_FILE), constants.O_RDWR | (create ? constants.O_CREAT : 0), 0o644);
  } catch (err) {
    if (isMissing(err)) throw create ? uploadGone(op) : partReplaced(op, err);
    throw err;
  }
  if ((await handle.stat()).size < end) {
    await handle.close();
    throw partReplaced(op);
  }
  return handle;
}

/** What {@link writeInPlace} did: the part's etag and size, or the whole body to store apart because it is too large. */
export type InPlaceResult =
  | { etag: string; size: number }
  | { overflow: AsyncIterable<Uint8Array> | Iterable<Uint8Array> };

/**
 * Writes `body` into the assembly file at `offset` and syncs it. A body longer than `maxSize`
 * stops being written there: the result's `overflow` yields all of it again (what was
 * written, read back, then the rest), to be stored apart while the caller still holds the
 * part's lock (which it must hold for the whole call).
 */
export async function writeInPlace(
  dir: string,
  offset: number,
  maxSize: number,
  body: ObjectBodyInput,
  op: string,
): Promise<InPlaceResult> {
  const whole = typeof body === "string" ? Buffer.from(body, "utf8") : body instanceof Uint8Array ? body : undefined;
  if (whole !== undefined && whole.byteLength > maxSize) return { overflow: [whole] };
  const handle = await openAssembly(dir, [], op);
  try {
    if (whole !== undefined) {
      await writeAll(handle, whole, offset);
      await handle.datasync();
      return { etag: partEtag(), size: whole.byteLength };
    }
    const chunks = bodyChunks(body, op)[Symbol.asyncIterator]();
    // Chunks are gathered into one vectored write per WRITE_BATCH bytes: fewer trips to the thread pool.
    let batch: Uint8Array[] = [];
    let batched = 0;
    let size = 0;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      const chunk = next.value;
      if (size + batched + chunk.byteLength > maxSize) {
        await writeAllv(handle, batch, offset + size);
        return { overflow: readBackThenRest(dir, offset, size + batched, chunk, chunks) };
      }
      batch.push(chunk);
      batched += chunk.byteLength;
      if (batched >= WRITE_BATCH) {
        await writeAllv(handle, batch, offset + size);
        size += batched;
        batch = [];
        batched = 0;
      }
    }
    await writeAllv(handle, batch, offset + size);
    size += batched;
    await handle.datasync();
    return { etag: partEtag(), size };
  } finally {
    await handle.close();
  }
}

const WRITE_BATCH = 1024 * 1024;

/** Records a part written in place: creates its record file and syncs the folder. Must be called holding the part's lock. */
export async function recordSlot(dir: string, part: PartRecord & { offset: number }, op: string): Promise<void> {
  try {
    await (await open(join(dir, slotRecordName(part)), "wx")).close();
    await syncDirectory(dir);
  } catch (err) {
    if (isMissing(err)) throw uploadGone(op);
    throw err;
  }
}

/**
 * A part's etag: a random version id, new with every write of the part. It only has to tell
 * one stored version from another (completion compares it); hashing every byte to make it
 * would cost more than writing them.
 */
export function partEtag(): string {
  return randomBytes(16).toString("hex");
}

async function* readBackThenRest(
  dir: string,
  offset: number,
  size: number,
  current: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const handle = await open(join(dir, ASSEMBLY_FILE), "r");
  try {
    yield* fileChunks(handle, offset, size);
  } finally {
    await handle.close();
  }
  yield current;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

/**
 * Whether completion can assemble in place: every in-place part sits at the offset the
 * object needs it (the sum of the sizes before it), and no part beyond the last one has a
 * record (completion cuts the file there).
 */
export async function assemblesInPlace(dir: string, ordered: readonly PartRecord[]): Promise<boolean> {
  let offset = 0;
  for (const part of ordered) {
    if (part.offset !== undefined && part.offset !== offset) return false;
    offset += part.size;
  }
  for (const name of await readdir(dir)) {
    const match = APART_RECORD.exec(name) ?? SLOT_RECORD.exec(name);
    if (match && Number(match[1]) > ordered.length) return false;
  }
  return true;
}

/**
 * Copies the parts stored apart into their places in the open assembly file, checking each
 * record still has the etag completion verified. Must be called holding the completion lock,
 * after {@link assemblesInPlace} said yes.
 */
export async function copyApartParts(assembly: FileHandle, dir: string, ordered: readonly PartRecord[], op: string) {
  let offset = 0;
  for (const part of ordered) {
    if (part.offset === undefined) {
      let position = offset;
      for await (const chunk of apartContent(dir, part, op)) {
        await writeAll(assembly, chunk, position);
        position += chunk.byteLength;
      }
    }
    offset += part.size;
  }
}

/**
 * The content of the parts in order, for completion by copy: parts stored apart from their
 * record files, in-place parts from the assembly file. A record replaced since completion
 * checked it, or bytes gone, fail with {@link InvalidArgumentError}.
 */
export async function* partsContent(
  dir: string,
  ordered: readonly PartRecord[],
  op: string,
): AsyncGenerator<Uint8Array> {
  let assembly: FileHandle | undefined;
  try {
    for (const part of ordered) {
      if (part.offset === undefined) {
        yield* apartContent(dir, part, op);
        continue;
      }
      const current = (await readPartRecords(dir, op)).get(part.partNumber);
      if (current?.etag !== part.etag || current.offset !== part.offset) throw partReplaced(op);
      try {
        assembly ??= await open(join(dir, ASSEMBLY_FILE), "r");
        yield* fileChunks(assembly, part.offset, part.size);
      } catch (err) {
        if (err instanceof InvalidArgumentError) throw err;
        throw partReplaced(op, err);
      }
    }
  } finally {
    await assembly?.close();
  }
}

async function* apartContent(dir: string, part: PartRecord, op: string): AsyncGenerator<Uint8Array> {
  const opened = await openObjectFile(partRecordPath(dir, part.partNumber));
  try {
    if (!opened || opened.trailer.etag !== part.etag) throw partReplaced(op);
    yield* fileChunks(opened.handle, 0, opened.size);
  } finally {
    await opened?.handle.close();
  }
}

/**
 * The etag of an object assembled from parts: SHA-256 of the parts' etags (in order), then
 * `-<part count>`, like S3's multipart etags. Known without reading the content again.
 */
export function compositeEtag(parts: readonly RecordedPart[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(`${part.etag}\n`);
  return `${hash.digest("hex")}-${parts.length}`;
}

function partReplaced(op: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError("a part was replaced or removed while the upload was being completed", {
    op,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The error of an upload whose folder vanished (completed or aborted meanwhile). */
export function uploadGone(op: string): NotFoundError {
  return new NotFoundError("the multipart upload is no longer open", { op });
}
