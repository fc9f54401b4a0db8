import { InvalidArgumentError, InvalidKeyError } from "../errors.js";

/** Longest key in UTF-8 bytes (the S3 limit, applied to every backend so keys stay portable). */
export const MAX_OBJECT_KEY_BYTES = 1024;

/**
 * Throws {@link InvalidKeyError} unless `key` is a safe relative `/`-separated path: not empty,
 * not absolute, no backslash or NUL, no lone UTF-16 surrogate, no empty, `.` or `..` segment (so no `//` and no trailing
 * `/`), at most {@link MAX_OBJECT_KEY_BYTES} bytes. Every backend applies the same rules.
 */
export function assertObjectKey(key: unknown, op: string): asserts key is string {
  if (typeof key !== "string" || key.length === 0)
    throw new InvalidKeyError("object key must be a non-empty string", { op });
  if (key.includes("\0")) throw new InvalidKeyError("object key must not contain NUL", { op });
  if (hasLoneSurrogate(key))
    throw new InvalidKeyError("object key must be well-formed Unicode (no lone surrogates)", { op });
  if (key.includes("\\"))
    throw new InvalidKeyError(`object key must not contain a backslash: ${JSON.stringify(key)}`, { op });
  if (key.startsWith("/")) throw new InvalidKeyError(`object key must be relative: ${JSON.stringify(key)}`, { op });
  for (const segment of key.split("/")) {
    if (segment === "") throw new InvalidKeyError(`object key has an empty segment: ${JSON.stringify(key)}`, { op });
    if (segment === "." || segment === "..") {
      throw new InvalidKeyError(`object key must not contain "." or ".." segments: ${JSON.stringify(key)}`, { op });
    }
  }
  if (Buffer.byteLength(key, "utf8") > MAX_OBJECT_KEY_BYTES) {
    throw new InvalidKeyError(`object key is longer than ${MAX_OBJECT_KEY_BYTES} bytes`, { op });
  }
}

/** Throws {@link InvalidArgumentError} unless `prefix` is a string without NUL (an empty prefix lists everything). */
export function assertListPrefix(prefix: unknown, op: string): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.includes("\0")) {
    throw new InvalidArgumentError("list prefix must be a string without NUL", { op });
  }
}

/** Throws {@link InvalidArgumentError} unless a listing's `cursor` is absent or a string. */
export function assertListCursor(cursor: unknown, op: string): asserts cursor is string | undefined {
  if (cursor !== undefined && typeof cursor !== "string") {
    throw new InvalidArgumentError("list cursor must be a string (the previous page's cursor)", { op });
  }
}

/** The page size of a listing: default 1000, otherwise a positive integer. */
export function listLimit(limit: number | undefined, op: string): number {
  if (limit === undefined) return 1000;
  if (!Number.isInteger(limit) || limit < 1)
    throw new InvalidArgumentError(`list limit must be a positive integer, got ${limit}`, { op });
  return limit;
}

/** Orders keys by their UTF-8 bytes, as S3 does. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** True when `text` holds a UTF-16 surrogate without its partner (not encodable as UTF-8). */
export function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
