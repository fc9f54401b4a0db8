import type { Readable } from "node:stream";

/** Metadata of a stored object. */
export interface ObjectInfo {
  /** The object's key, e.g. `"acme/users/ada.db"`. */
  readonly key: string;
  /** Size in bytes. */
  readonly size: number;
  /**
   * Opaque version tag, without quotes; changes whenever the content changes (rewriting identical
   * bytes may keep it: `put` on the memory and file stores gives the content's SHA-256, on S3
   * its MD5; objects completed from parts get a tag derived from their parts'). Pass it back as
   * `ifMatch` for a conditional write.
   */
  readonly etag: string;
  /** MIME type given at upload, if any. */
  readonly contentType?: string;
  /** Last write, ms since the epoch. */
  readonly lastModified: number;
}

/** An object's metadata plus its content as a stream (read it once). */
export interface ObjectBody extends ObjectInfo {
  /** The content, or only the requested range of it. */
  readonly body: Readable;
  /** Present when `get` was asked for a range: the bytes `body` holds, `end` exclusive. `size` stays the whole object's. */
  readonly range?: ByteRange;
}

/** Bytes `start` (inclusive) to `end` (exclusive) of an object. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Options of {@link ObjectStore.get}. */
export interface GetOptions {
  /**
   * Read only these bytes. `end` past the object's size is clamped to it; a `start` at or past
   * the size, `start >= end` or a negative start -> {@link InvalidArgumentError}.
   */
  range?: ByteRange;
}

/** What can be uploaded: bytes, text (UTF-8), a Node stream, or any async iterable of chunks. */
export type ObjectBodyInput = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/** Options of {@link ObjectStore.put}. */
export interface PutOptions {
  /** Stored with the object and returned by `get`/`head`. */
  contentType?: string;
  /** Write only if the current object has this etag; otherwise {@link ConflictError} and nothing changes. */
  ifMatch?: string;
  /** `"*"`: write only if no object exists under the key; otherwise {@link ConflictError}. */
  ifNoneMatch?: "*";
  /**
   * Byte length of a streamed body, when known (lets S3 stream without buffering). A body of
   * another length -> {@link InvalidArgumentError}, nothing written.
   */
  contentLength?: number;
}

/** Options of {@link ObjectStore.completeMultipart}: the conditions of {@link PutOptions}. */
export interface CompleteMultipartOptions {
  /** Complete only if the current object has this etag; otherwise {@link ConflictError}, nothing written, upload kept open. */
  ifMatch?: string;
  /** `"*"`: complete only if no object exists under the key; otherwise {@link ConflictError}, upload kept open. */
  ifNoneMatch?: "*";
}

/** Options of {@link ObjectStore.list}. */
export interface ListOptions {
  /** Continue after a previous page (its `cursor`). */
  cursor?: string;
  /** Objects per page. Default 1000. */
  limit?: number;
}

/** One page of a listing, ordered by the keys' UTF-8 bytes. `cursor` (opaque) is absent on the last page. */
export interface ListPage {
  readonly objects: readonly ObjectInfo[];
  readonly cursor?: string;
}

/** A part as recorded after {@link ObjectStore.putPart}, to pass to {@link ObjectStore.completeMultipart}. */
export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

/**
 * Object storage: a flat key space of immutable-per-version blobs. Keys are `/`-separated
 * relative paths; backends reject keys that could escape their root ({@link InvalidKeyError}).
 * Every backend also supports multipart uploads, so large objects stream in parts. A backend
 * keeps no reference to a body once `put` or `putPart` settled: the caller may reuse its buffer.
 *
 * Missing objects are values (`null`) for reads and success for deletes; faults throw.
 *
 * @example
 * ```ts
 * const store = new FileObjectStore({ root: "./.storeroom/objects" });
 * const { etag } = await store.put("docs/a.txt", "hello", { contentType: "text/plain" });
 * await store.put("docs/a.txt", "again", { ifMatch: etag }); // ConflictError if someone wrote in between
 * const obj = await store.get("docs/a.txt"); // { body, etag, size, ... } or null
 * ```
 */
export interface ObjectStore {
  /** Reads an object (or a byte range of it, see {@link GetOptions}), or returns `null` when there is none. */
  get(key: string, options?: GetOptions): Promise<ObjectBody | null>;
  /** Reads an object's metadata, or returns `null` when there is none. */
  head(key: string): Promise<ObjectInfo | null>;
  /**
   * Writes an object atomically (readers see the old or the new content, never a mix) and
   * returns its new etag. Conditional options failing -> {@link ConflictError}, nothing written.
   */
  put(key: string, body: ObjectBodyInput, options?: PutOptions): Promise<{ etag: string }>;
  /** Deletes an object; deleting a missing object succeeds. Invalid key -> {@link InvalidKeyError}. */
  delete(key: string): Promise<void>;
  /**
   * Lists objects whose key starts with `prefix` (a plain string prefix: `"a/b"` also matches
   * `"a/bc"`; pass `"a/b/"` for a folder), ordered by key, a page at a time.
   */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;

  /** Size every non-final part must have at least (memory 64 KiB, filesystem 4 MiB, S3 16 MiB by default). */
  readonly partSize: number;
  /** Most parts one upload may have (`Infinity` when unlimited; S3: 10,000). */
  readonly maxPartCount: number;
  /** Starts a multipart upload and returns its upload id. */
  initMultipart(key: string, options?: { contentType?: string }): Promise<string>;
  /**
   * Stores part `partNumber` (1-based) of an upload; re-sending a part number replaces it.
   * Unknown or finished upload -> {@link NotFoundError}. `contentLength` is the body's exact
   * length (another length -> {@link InvalidArgumentError}); a body that fails or is refused
   * leaves the part stored before.
   */
  putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
    options?: { contentLength?: number },
  ): Promise<{ etag: string; size: number }>;
  /**
   * Assembles the parts into the object. Verifies every (part number, etag) pair, that the
   * numbers are contiguous 1..N, and that non-final parts are at least `partSize`; a mismatch
   * throws {@link InvalidArgumentError} and keeps the upload open. Unknown or finished upload
   * -> {@link NotFoundError}. Closes the upload on success.
   *
   * `options` are the same conditions as {@link PutOptions}, checked atomically with the
   * publication (against the object as it is at completion, not at `initMultipart`): a failed
   * condition throws {@link ConflictError}, writes nothing and keeps the upload open, so the
   * caller should {@link abortMultipart} it (S3 expires it otherwise).
   *
   * @example
   * ```ts
   * const info = await store.completeMultipart(key, uploadId, parts, { ifMatch: knownEtag });
   * ```
   */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options?: CompleteMultipartOptions,
  ): Promise<ObjectInfo>;
  /** Discards an upload and its parts. Idempotent: aborting an unknown or finished upload succeeds. */
  abortMultipart(key: string, uploadId: string): Promise<void>;

  /** Releases clients and handles. Idempotent. */
  close(): Promise<void>;
}

/**
 * A backend whose clients can send multipart parts straight to storage (S3): the server hands
 * out a presigned URL per part and, at completion, reads back what arrived.
 */
export interface DirectPartUploads {
  /**
   * A URL a client PUTs part `partNumber` of `uploadId` to, with no other credentials, valid
   * for `expiresInSeconds` (1..604800, S3's limit). Bad arguments -> {@link InvalidArgumentError}.
   */
  presignPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string>;
  /** The parts stored so far for `uploadId`, by part number. Unknown upload -> {@link NotFoundError}. */
  listParts(key: string, uploadId: string): Promise<readonly (CompletedPart & { readonly size: number })[]>;
}

/** Whether `store` implements {@link DirectPartUploads}. */
export function supportsDirectParts(store: ObjectStore): store is ObjectStore & DirectPartUploads {
  const candidate = store as Partial<DirectPartUploads>;
  return typeof candidate.presignPart === "function" && typeof candidate.listParts === "function";
}
