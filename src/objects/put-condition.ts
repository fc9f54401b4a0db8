import { ConflictError, InvalidArgumentError } from "../errors.js";
import { normalizeEtag } from "./multipart-rules.js";
import { assertContentLength } from "./object-body.js";
import type { PutOptions } from "./object-store.js";

/** Throws {@link InvalidArgumentError} for malformed conditions (`ifNoneMatch` other than `"*"`, empty `ifMatch`). */
export function assertPutOptions(options: PutOptions, op: string): void {
  if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
    throw new InvalidArgumentError('ifNoneMatch only accepts "*"', { op });
  }
  if (options.ifMatch !== undefined && (typeof options.ifMatch !== "string" || options.ifMatch === "")) {
    throw new InvalidArgumentError("ifMatch must be a non-empty etag", { op });
  }
  assertContentLength(options.contentLength, op);
  assertContentType(options.contentType, op);
}

/**
 * Throws {@link InvalidArgumentError} unless `contentType` is absent or a string of printable
 * ASCII (spaces and tabs included): what every backend can store and S3 can send as a header
 * (a line break there would be a TypeError from the HTTP client, or a header of its own).
 */
export function assertContentType(contentType: unknown, op: string): void {
  if (contentType !== undefined && (typeof contentType !== "string" || !/^[\t\x20-\x7e]*$/.test(contentType))) {
    throw new InvalidArgumentError("contentType must be a string of printable ASCII characters", { op });
  }
}

/** Throws {@link ConflictError} when the current etag (`null` = no object) fails the put's conditions. */
export function checkPutCondition(key: string, currentEtag: string | null, options: PutOptions, op: string): void {
  if (options.ifNoneMatch === "*" && currentEtag !== null) {
    throw new ConflictError(`object ${JSON.stringify(key)} already exists`, { op });
  }
  if (
    options.ifMatch !== undefined &&
    (currentEtag === null || normalizeEtag(currentEtag) !== normalizeEtag(options.ifMatch))
  ) {
    throw new ConflictError(
      `object ${JSON.stringify(key)} ${currentEtag === null ? "does not exist" : "has changed"}`,
      { op },
    );
  }
}
