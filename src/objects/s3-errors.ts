import { AccessDeniedError, ConflictError, InvalidArgumentError, NotFoundError } from "../errors.js";

// Structural view of the SDK's ServiceException, so this file needs no SDK import.
interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function status(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

function errorName(err: unknown): string | undefined {
  return (err as SdkError | undefined)?.name ?? (err as SdkError | undefined)?.Code;
}

/** NoSuchKey / NotFound / a plain 404 (not a missing bucket or upload). */
export function isMissingObject(err: unknown): boolean {
  const name = errorName(err);
  return (
    name === "NoSuchKey" ||
    name === "NotFound" ||
    (status(err) === 404 && name !== "NoSuchBucket" && name !== "NoSuchUpload")
  );
}

export function isNoSuchUpload(err: unknown): boolean {
  return errorName(err) === "NoSuchUpload";
}

/** Maps S3 faults that callers branch on to storeroom errors; anything else passes through unchanged. */
export function mapError(err: unknown, op: string): unknown {
  const name = errorName(err);
  const code = status(err);
  if (name === "PreconditionFailed" || name === "ConditionalRequestConflict" || code === 412) {
    return new ConflictError("conditional write lost: the object changed", { op, cause: err });
  }
  if (name === "NoSuchUpload") return new NotFoundError("no open multipart upload with this id", { op, cause: err });
  if (name === "InvalidPart" || name === "InvalidPartOrder" || name === "EntityTooSmall") {
    return new InvalidArgumentError(`S3 rejected the parts: ${name}`, { op, cause: err });
  }
  if (name === "NoSuchBucket") return new NotFoundError("bucket does not exist", { op, cause: err });
  if (name === "AccessDenied" || code === 403) return new AccessDeniedError("S3 denied access", { op, cause: err });
  return err;
}
