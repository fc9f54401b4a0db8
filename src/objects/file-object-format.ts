import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { Readable } from "node:stream";

/**
 * On-disk layout of one object or part: the raw content, then a JSON trailer with the etag and
 * metadata, then 8 bytes (trailer length as uint32 BE + magic). Why a trailer: content,
 * etag and content type land in ONE file, so one rename publishes all of them atomically, and
 * the etag (a hash) is only known after the body has streamed through.
 */
const MAGIC = Buffer.from("SRO1");
const FOOTER = 8;
/** Bytes read from the end of a file to find its trailer (longer trailers take a second read). */
const TAIL_BYTES = 512;

/** What the trailer records. */
export interface FileTrailer {
  readonly etag: string;
  readonly lastModified: number;
  readonly contentType?: string;
}

/** What {@link writeObjectFile} records besides the content. */
export interface ObjectFileMeta {
  readonly lastModified: number;
  readonly contentType?: string | undefined;
  /** The etag to record; absent: the SHA-256 (hex) of the content, computed while it streams. */
  readonly etag?: string;
}

/** Writes `chunks` then the trailer to a new file at `path`, fsyncs it, and returns the etag and content size. */
export async function writeObjectFile(
  path: string,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  meta: ObjectFileMeta,
): Promise<{ etag: string; size: number }> {
  const handle = await open(path, "wx");
  try {
    const hash = meta.etag === undefined ? createHash("sha256") : undefined;
    let size = 0;
    // Bytes held whole in memory go out with the trailer in one call; a stream's chunks are
    // written as they come (its producer may refill a chunk once the next is asked for).
    const whole = Array.isArray(chunks) && chunks.length === 1 ? (chunks[0] as Uint8Array) : undefined;
    if (whole === undefined) {
      for await (const chunk of chunks) {
        hash?.update(chunk);
        await writeAll(handle, chunk, size);
        size += chunk.byteLength;
      }
    } else hash?.update(whole);
    const etag = hash?.digest("hex") ?? (meta.etag as string);
    const trailer = trailerBytes({ ...meta, etag });
    if (whole === undefined) await writeAll(handle, trailer, size);
    else {
      await writeAllv(handle, [whole, trailer], 0);
      size = whole.byteLength;
    }
    await handle.sync();
    return { etag, size };
  } finally {
    await handle.close();
  }
}

/** The bytes that end an object file after its content: the trailer JSON and the footer. */
export function trailerBytes(meta: ObjectFileMeta & { etag: string }): Buffer {
  const trailer: FileTrailer = {
    etag: meta.etag,
    lastModified: meta.lastModified,
    ...(meta.contentType === undefined ? {} : { contentType: meta.contentType }),
  };
  const json = Buffer.from(JSON.stringify(trailer), "utf8");
  const footer = Buffer.alloc(FOOTER);
  footer.writeUInt32BE(json.byteLength, 0);
  MAGIC.copy(footer, 4);
  return Buffer.concat([json, footer]);
}

/** An opened object file: its trailer and content length; the caller owns `handle`. */
export interface OpenedObjectFile {
  readonly handle: FileHandle;
  readonly trailer: FileTrailer;
  readonly size: number;
}

/** Opens an object file, or returns `null` if it does not exist. A malformed file throws. */
export async function openObjectFile(path: string): Promise<OpenedObjectFile | null> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const { size: fileSize } = await handle.stat();
    if (fileSize < FOOTER) throw new Error(`not a storeroom object file: ${path}`);
    // One read fetches the footer with the usual (short) trailer before it.
    const tail = await readAt(handle, Math.max(0, fileSize - TAIL_BYTES), Math.min(fileSize, TAIL_BYTES));
    const footer = tail.subarray(tail.byteLength - FOOTER);
    const jsonLength = footer.readUInt32BE(0);
    if (!footer.subarray(4).equals(MAGIC) || jsonLength > fileSize - FOOTER)
      throw new Error(`not a storeroom object file: ${path}`);
    const size = fileSize - FOOTER - jsonLength;
    const json =
      jsonLength + FOOTER <= tail.byteLength
        ? tail.subarray(tail.byteLength - FOOTER - jsonLength, tail.byteLength - FOOTER)
        : await readAt(handle, size, jsonLength);
    const trailer = JSON.parse(json.toString("utf8")) as FileTrailer;
    return { handle, trailer, size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Reads just the trailer and size of an object file (`null` when missing). */
export async function statObjectFile(path: string): Promise<{ trailer: FileTrailer; size: number } | null> {
  const opened = await openObjectFile(path);
  if (!opened) return null;
  await opened.handle.close();
  return { trailer: opened.trailer, size: opened.size };
}

/** A stream over the content (or bytes `range.start` to `range.end`, exclusive) of an opened object file; closes the handle when done. */
export function contentStream(
  opened: OpenedObjectFile,
  range: { start: number; end: number } = { start: 0, end: opened.size },
): Readable {
  if (range.end <= range.start) {
    void opened.handle.close().catch(() => undefined);
    return Readable.from([]);
  }
  return opened.handle.createReadStream({ start: range.start, end: range.end - 1, autoClose: true });
}

/** Yields `length` bytes of `handle` from `start` as chunks (does not close the handle); a file too short throws. */
export async function* fileChunks(
  handle: FileHandle,
  start: number,
  length: number,
  chunkSize = 1024 * 1024,
): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < length; offset += chunkSize) {
    yield await readAt(handle, start + offset, Math.min(chunkSize, length - offset));
  }
}

/** True for "no such file or directory" errors. */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG";
}

/** Writes all of `chunks`, one after the other, at `position` (one vectored write when the system takes it whole). */
export async function writeAllv(handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> {
  if (chunks.length === 0) return;
  const { bytesWritten } = await handle.writev(chunks as Uint8Array[], position);
  let skipped = 0;
  for (const chunk of chunks) {
    const end = skipped + chunk.byteLength;
    if (end > bytesWritten) {
      const from = Math.max(0, bytesWritten - skipped);
      await writeAll(handle, chunk.subarray(from), position + skipped + from);
    }
    skipped = end;
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new Error("unexpected end of object file");
    done += bytesRead;
  }
  return buffer;
}

/** Writes all of `bytes` at `position`. */
export async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}
