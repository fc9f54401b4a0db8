import { describe, expect, it } from "vitest";
import { isStoreError, type StoreErrorCode } from "../../src/errors.js";
import { isMissingObject, isNoSuchUpload, mapError } from "../../src/objects/s3-errors.js";

// Error shapes as @aws-sdk/client-s3 throws them (name + $metadata.httpStatusCode).
const sdkError = (name: string, httpStatusCode: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });

describe("S3 error mapping", () => {
  it.each<[string, number, StoreErrorCode]>([
    ["PreconditionFailed", 412, "CONFLICT"],
    ["ConditionalRequestConflict", 409, "CONFLICT"],
    ["Unknown", 412, "CONFLICT"],
    ["NoSuchUpload", 404, "NOT_FOUND"],
    ["NoSuchBucket", 404, "NOT_FOUND"],
    ["InvalidPart", 400, "INVALID_ARGUMENT"],
    ["InvalidPartOrder", 400, "INVALID_ARGUMENT"],
    ["EntityTooSmall", 400, "INVALID_ARGUMENT"],
    ["AccessDenied", 403, "ACCESS_DENIED"],
    ["InvalidAccessKeyId", 403, "ACCESS_DENIED"],
  ])("%s (%i) -> %s with the SDK error as cause", (name, status, code) => {
    const err = sdkError(name, status);
    const mapped = mapError(err, "objects.put");
    expect(isStoreError(mapped, code)).toBe(true);
    expect((mapped as Error).cause).toBe(err);
  });

  it("anything else passes through unchanged", () => {
    const err = sdkError("SlowDown", 503);
    expect(mapError(err, "objects.put")).toBe(err);
    const plain = new Error("socket hang up");
    expect(mapError(plain, "objects.get")).toBe(plain);
  });

  it("missing object vs missing upload or bucket", () => {
    expect(isMissingObject(sdkError("NoSuchKey", 404))).toBe(true);
    expect(isMissingObject(sdkError("NotFound", 404))).toBe(true);
    expect(isMissingObject(sdkError("NoSuchBucket", 404))).toBe(false);
    expect(isMissingObject(sdkError("NoSuchUpload", 404))).toBe(false);
    expect(isNoSuchUpload(sdkError("NoSuchUpload", 404))).toBe(true);
    expect(isMissingObject(new Error("boom"))).toBe(false);
  });
});
