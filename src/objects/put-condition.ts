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
