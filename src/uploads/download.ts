import { AccessDeniedError } from "../errors.js";
import type { ObjectBody, ObjectStore } from "../objects/index.js";
import { contentDisposition } from "./content-disposition.js";
import { sanitizeContentType } from "./content-type.js";
import { parseDownloadKey } from "./download-key.js";

/**
 * Who may read which file through the download route.
 *
 * @example
 * ```ts
 * const acl: FileACL = { canRead: async (user, key) => key.startsWith("pub/") || (await isMember(user, key)) };
 * ```
 */
export interface FileACL {
  /** Whether `principal` (undefined: anonymous) may read `key`. Throwing fails the request; it is never read as "no". */
  canRead(principal: string | undefined, key: string): boolean | Promise<boolean>;
}

/** The default: reads only under `pub/`, for everybody. */
export const defaultFileACL: FileACL = Object.freeze({
  canRead: (_principal: string | undefined, key: string) => key.startsWith("pub/"),
});

/** Options of {@link openDownload}. */
export interface DownloadOptions {
  objects: ObjectStore;
  /** The caller's id; undefined for anonymous requests. */
  principal?: string;
  /** Default {@link defaultFileACL}. */
  acl?: FileACL;
}

/** An object ready to stream, with the response headers to send. */
export interface Download {
  readonly key: string;
  readonly object: ObjectBody;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Serves `GET /storage/files/<key>`: parses the URL-encoded key ({@link parseDownloadKey}),
 * checks {@link FileACL.canRead} BEFORE touching storage (so existence does not leak), reads
 * the object and returns it with {@link downloadHeaders}. A missing object -> `null`
 * (send 404). Bad key -> {@link InvalidKeyError}; denied -> {@link AccessDeniedError}.
 *
 * @example
 * ```ts
 * const dl = await openDownload(req.params["*"], { objects, principal: user?.id });
 * if (dl === null) return reply.code(404).send();
 * reply.headers(dl.headers).send(dl.object.body);
 * ```
 */
export async function openDownload(encodedKey: string, options: DownloadOptions): Promise<Download | null> {
  const key = parseDownloadKey(encodedKey);
  const acl = options.acl ?? defaultFileACL;
  if (!(await acl.canRead(options.principal, key))) {
    throw new AccessDeniedError(`not allowed to read ${key}`, { op: "uploads.openDownload" });
  }
  const object = await options.objects.get(key);
  if (object === null) return null;
  return { key, object, headers: downloadHeaders(key, object) };
}

/** What {@link downloadHeaders} adds to the object's own metadata. */
export interface DownloadHeaderOptions {
  /** The uploader's file name, sent in `Content-Disposition`. */
  filename?: string;
  /** `inline` (default) or `attachment` (the browser saves the file). */
  disposition?: "inline" | "attachment";
}

/**
 * The response headers of a download of `key`: always `X-Content-Type-Options: nosniff`, a
 * sanitised `Content-Type`, `ETag`, `Last-Modified`, `Accept-Ranges: bytes` and, with a
 * filename, `Content-Disposition` (RFC 6266). `pub/` keys get
 * `Cache-Control: public, max-age=3600, immutable`, other keys `private, no-store`.
 */
export function downloadHeaders(
  key: string,
  object: { size: number; etag: string; contentType?: string; lastModified?: number },
  options: DownloadHeaderOptions = {},
): Record<string, string> {
  const headers: Record<string, string> = {
    "X-Content-Type-Options": "nosniff",
    "Content-Type": sanitizeContentType(object.contentType, key),
    "Content-Length": String(object.size),
    "Accept-Ranges": "bytes",
    ETag: quotedEtag(object.etag),
    "Cache-Control": key.startsWith("pub/") ? "public, max-age=3600, immutable" : "private, no-store",
  };
  if (object.lastModified !== undefined && object.lastModified > 0) {
    headers["Last-Modified"] = new Date(object.lastModified).toUTCString();
  }
  if (options.filename !== undefined && options.filename !== "") {
    headers["Content-Disposition"] = contentDisposition(options.disposition ?? "inline", options.filename);
  }
  return headers;
}

/** `etag` as an HTTP entity tag: in double quotes. */
export function quotedEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}
