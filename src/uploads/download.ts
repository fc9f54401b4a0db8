import { AccessDeniedError } from "../errors.js";
import type { ObjectBody, ObjectStore } from "../objects/index.js";
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

/** The seed's default: reads only under `pub/`, for everybody. */
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
 * the object and returns it with headers: always `X-Content-Type-Options: nosniff` and a
 * sanitised `Content-Type`; `pub/` keys get `Cache-Control: public, max-age=3600, immutable`
 * and an `ETag`, other keys `private, no-store` without ETag. A missing object -> `null`
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

/** The response headers {@link openDownload} sends for `key`. */
export function downloadHeaders(
  key: string,
  object: { size: number; etag: string; contentType?: string },
): Record<string, string> {
  const headers: Record<string, string> = {
    "X-Content-Type-Options": "nosniff",
    "Content-Type": sanitizeContentType(object.contentType, key),
    "Content-Length": String(object.size),
  };
  if (key.startsWith("pub/")) {
    headers["Cache-Control"] = "public, max-age=3600, immutable";
    headers.ETag = object.etag.startsWith('"') ? object.etag : `"${object.etag}"`;
  } else {
    headers["Cache-Control"] = "private, no-store";
  }
  return headers;
}
