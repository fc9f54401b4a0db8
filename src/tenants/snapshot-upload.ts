import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ConflictError } from "../errors.js";
import type { CompletedPart, ObjectStore } from "../objects/object-store.js";

/** What a checkpoint upload wrote. */
export interface UploadedSnapshot {
  readonly etag: string;
  readonly bytes: number;
}

const contentType = "application/vnd.sqlite3";

/**
 * Streams a snapshot file to `objectKey`, conditional on the generation the caller holds:
 * `ifMatch: etag`, or `ifNoneMatch: "*"` when the tenant was never uploaded. Files of at least
 * `multipartBytes` go up in parts, and the same condition is checked by `completeMultipart`
 * atomically with the publication, so a writer landing at any point of the upload is detected.
 * Throws {@link ConflictError} when the generation moved (the upload is aborted); other backend
 * errors pass through.
 */
export async function uploadSnapshot(
  store: ObjectStore,
  objectKey: string,
  file: string,
  expectedEtag: string | null,
  multipartBytes: number,
): Promise<UploadedSnapshot> {
  const { size } = await stat(file);
  const condition = expectedEtag === null ? { ifNoneMatch: "*" as const } : { ifMatch: expectedEtag };
  if (size < multipartBytes) {
    const { etag } = await store.put(objectKey, createReadStream(file), {
      ...condition,
      contentLength: size,
      contentType,
    });
    return { etag, bytes: size };
  }
  const partBytes = Math.max(store.partSize, Math.ceil(size / Math.min(store.maxPartCount, 10_000)));
  const uploadId = await store.initMultipart(objectKey, { contentType });
  try {
    const parts: CompletedPart[] = [];
    for (let start = 0, partNumber = 1; start < size; start += partBytes, partNumber++) {
      const length = Math.min(partBytes, size - start);
      const body = createReadStream(file, { start, end: start + length - 1 });
      const { etag } = await store.putPart(objectKey, uploadId, partNumber, body, { contentLength: length });
      parts.push({ partNumber, etag });
    }
    const info = await store.completeMultipart(objectKey, uploadId, parts, condition);
    return { etag: info.etag, bytes: size };
  } catch (err) {
    // The upload's own error is the one to report; a failed abort only leaves parts for the backend's expiry.
    await store.abortMultipart(objectKey, uploadId).catch(() => undefined);
    throw err;
  }
}
