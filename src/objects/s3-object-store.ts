import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { ClosedError, InvalidArgumentError } from "../errors.js";
import { importOptional } from "../internal/optional-dependency.js";
import {
  assertPartList,
  assertPartNumber,
  assertRange,
  checkCompletedParts,
  normalizeEtag,
  positiveSize,
  type RecordedPart,
} from "./multipart-rules.js";
import { assertContentLength, bodyChunks, readUpTo, withDeclaredLength } from "./object-body.js";
import { assertListCursor, assertListPrefix, assertObjectKey, listLimit } from "./object-key.js";
import type {
  CompletedPart,
  CompleteMultipartOptions,
  DirectPartUploads,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectBody,
  ObjectBodyInput,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from "./object-store.js";
import { assertContentType, assertPutOptions } from "./put-condition.js";
import { isMissingObject, isNoSuchUpload, mapError } from "./s3-errors.js";

/** Options of {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Bucket holding the objects (must exist). */
  bucket: string;
  /** Endpoint URL for S3-compatible services, e.g. `http://127.0.0.1:9000`. Default AWS. */
  endpoint?: string;
  /** Default `"us-east-1"`. */
  region?: string;
  /** Static credentials. Default the SDK's chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Path-style URLs (`endpoint/bucket/key`), needed by MinIO, s3rver and most self-hosted services. Default false. */
  forcePathStyle?: boolean;
  /** Minimum size of non-final parts, also the part size of unknown-length puts. Default 16 MiB. */
  partSize?: number;
  /** Most parts per upload. Default 10,000 (the S3 limit). */
  maxPartCount?: number;
  /**
   * When the SDK adds request checksums. Default `"WHEN_REQUIRED"`: the SDK default (`"WHEN_SUPPORTED"`)
   * sends streamed bodies with `aws-chunked` framing, which s3rver and some S3-compatible
   * services store verbatim, corrupting the object.
   */
  requestChecksumCalculation?: "WHEN_REQUIRED" | "WHEN_SUPPORTED";
  /** When the SDK validates response checksums. Default `"WHEN_REQUIRED"`. */
  responseChecksumValidation?: "WHEN_REQUIRED" | "WHEN_SUPPORTED";
  /** A ready client to use instead (its own config wins; `close()` then leaves it open). */
  client?: S3Client;
}

type S3Sdk = typeof import("@aws-sdk/client-s3");

const ignore = (): void => undefined;
const SILENT_LOGGER = Object.freeze({ trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore });

let sdk: S3Sdk | undefined;

/** The AWS SDK's S3 package, an optional dependency, loaded when S3 is first used. */
export async function loadS3Sdk(): Promise<S3Sdk> {
  sdk ??= await importOptional<S3Sdk>("@aws-sdk/client-s3", "S3 object storage");
  return sdk;
}

/**
 * An {@link ObjectStore} on S3 or an S3-compatible service. Etags are S3's, without quotes.
 * The AWS SDK (`@aws-sdk/client-s3`, an optional package) is loaded by the first call; without
 * it calls reject with {@link MissingDependencyError} (`openObjectStore("s3://...")` already does).
 */
export class S3ObjectStore implements ObjectStore, DirectPartUploads {
  readonly partSize: number;
  readonly maxPartCount: number;
  readonly #options: S3ObjectStoreOptions;
  #s3: Promise<{ client: S3Client; sdk: S3Sdk }> | undefined;
  #client: S3Client | undefined;
  readonly #ownsClient: boolean;
  readonly #bucket: string;
  #closed = false;

  constructor(options: S3ObjectStoreOptions) {
    if (typeof options?.bucket !== "string" || options.bucket === "")
      throw new InvalidArgumentError("S3ObjectStore needs a bucket");
    this.#bucket = options.bucket;
    this.partSize = positiveSize(options.partSize ?? 16 * 1024 * 1024, "partSize");
    this.maxPartCount = positiveSize(options.maxPartCount ?? 10_000, "maxPartCount");
    this.#ownsClient = options.client === undefined;
    this.#client = options.client;
    this.#options = options;
  }

  /** The client and the SDK's command classes, loading the SDK on first use. */
  #sdk(): Promise<{ client: S3Client; sdk: S3Sdk }> {
    this.#s3 ??= loadS3Sdk().then((loaded) => {
      const options = this.#options;
      this.#client ??= new loaded.S3Client({
        region: options.region ?? "us-east-1",
        forcePathStyle: options.forcePathStyle ?? false,
        requestChecksumCalculation: options.requestChecksumCalculation ?? "WHEN_REQUIRED",
        responseChecksumValidation: options.responseChecksumValidation ?? "WHEN_REQUIRED",
        // The SDK logs nothing by default, except one console warning when a streamed body
        // fails, which this store turns into the body's own error: keep that quiet too.
        logger: SILENT_LOGGER,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      });
      return { client: this.#client, sdk: loaded };
    });
    return this.#s3;
  }

  async get(key: string, options: GetOptions = {}): Promise<ObjectBody | null> {
    const op = "objects.get";
    this.#check(key, op);
    const wanted = options.range;
    if (wanted !== undefined) assertRange(wanted, op);
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          ...(wanted === undefined ? {} : { Range: `bytes=${wanted.start}-${wanted.end - 1}` }),
        }),
      );
      if (wanted === undefined) {
        return {
          ...info(key, out.ContentLength, out.ETag, out.LastModified, out.ContentType),
          body: bodyStream(out.Body),
        };
      }
      // "bytes <first>-<last>/<size>": the served range and the whole object's size.
      const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? "");
      const size = match ? Number(match[3]) : (out.ContentLength ?? 0);
      const range = match ? { start: Number(match[1]), end: Number(match[2]) + 1 } : { start: 0, end: size };
      return { ...info(key, size, out.ETag, out.LastModified, out.ContentType), range, body: bodyStream(out.Body) };
    } catch (err) {
      if (isMissingObject(err)) return null;
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 416) {
        throw new InvalidArgumentError(`range ${wanted?.start}-${wanted?.end} is not within ${key}`, {
          op,
          cause: err,
        });
      }
      throw mapError(err, op);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const op = "objects.head";
    this.#check(key, op);
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(new s3.sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return info(key, out.ContentLength, out.ETag, out.LastModified, out.ContentType);
    } catch (err) {
      if (isMissingObject(err)) return null;
      throw mapError(err, op);
    }
  }

  async put(key: string, input: ObjectBodyInput, options: PutOptions = {}): Promise<{ etag: string }> {
    const op = "objects.put";
    this.#check(key, op);
    assertPutOptions(options, op);
    const body = withDeclaredLength(input, options.contentLength, op);
    const fixed = typeof body === "string" ? Buffer.from(body, "utf8") : body instanceof Uint8Array ? body : undefined;
    let payload: Uint8Array | StreamedBody;
    let length: number;
    if (fixed !== undefined) {
      payload = fixed;
      length = fixed.byteLength;
    } else if (options.contentLength !== undefined) {
      payload = new StreamedBody(bodyChunks(body, op), input);
      length = options.contentLength;
    } else {
      // Unknown length: S3 needs one, so buffer up to a part and switch to multipart beyond it.
      const chunks = bodyChunks(body, op)[Symbol.asyncIterator]();
      const first = await readUpTo(chunks, this.partSize);
      if (!first.done)
        return this.#putMultipart(key, first.bytes, chunks, options.contentType, sdkConditions(options), op);
      payload = first.bytes;
      length = first.bytes.byteLength;
    }
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: payload instanceof StreamedBody ? payload.stream : payload,
          ContentLength: length,
          ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
          ...sdkConditions(options),
        }),
        payload instanceof StreamedBody ? { abortSignal: payload.signal } : {},
      );
      return { etag: normalizeEtag(out.ETag ?? "") };
    } catch (err) {
      if (payload instanceof StreamedBody) throw payload.release() ?? mapError(err, op);
      throw mapError(err, op);
    }
  }

  async delete(key: string): Promise<void> {
    const op = "objects.delete";
    this.#check(key, op);
    try {
      const s3 = await this.#sdk();
      await s3.client.send(new s3.sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: key }));
    } catch (err) {
      if (!isMissingObject(err)) throw mapError(err, op);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    const op = "objects.list";
    this.#open(op);
    assertListPrefix(prefix, op);
    assertListCursor(options.cursor, op);
    const limit = listLimit(options.limit, op);
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: prefix,
          MaxKeys: Math.min(limit, 1000),
          ...(options.cursor === undefined ? {} : { ContinuationToken: options.cursor }),
        }),
      );
      const objects = (out.Contents ?? []).map((o) => info(o.Key ?? "", o.Size, o.ETag, o.LastModified, undefined));
      return out.IsTruncated && out.NextContinuationToken
        ? { objects, cursor: out.NextContinuationToken }
        : { objects };
    } catch (err) {
      throw mapError(err, op);
    }
  }

  async initMultipart(key: string, options: { contentType?: string } = {}): Promise<string> {
    const op = "objects.initMultipart";
    this.#check(key, op);
    assertContentType(options.contentType, op);
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
        }),
      );
      if (!out.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      return out.UploadId;
    } catch (err) {
      throw mapError(err, op);
    }
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    input: ObjectBodyInput,
    options: { contentLength?: number } = {},
  ): Promise<{ etag: string; size: number }> {
    const op = "objects.putPart";
    this.#check(key, op);
    assertPartNumber(partNumber, this.maxPartCount, op);
    assertContentLength(options.contentLength, op);
    const body = withDeclaredLength(input, options.contentLength, op);
    let payload: Uint8Array | StreamedBody;
    let size: number;
    if (options.contentLength !== undefined) {
      payload = new StreamedBody(bodyChunks(body, op), input);
      size = options.contentLength;
    } else {
      const chunks: Uint8Array[] = [];
      for await (const chunk of bodyChunks(body, op)) chunks.push(chunk);
      payload = Buffer.concat(chunks);
      size = payload.byteLength;
    }
    return { etag: await this.#uploadPart(key, uploadId, partNumber, payload, size, op), size };
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options: CompleteMultipartOptions = {},
  ): Promise<ObjectInfo> {
    const op = "objects.completeMultipart";
    this.#check(key, op);
    assertPutOptions(options, op);
    assertPartList(parts, op);
    // S3 only enforces its own 5 MiB minimum; the store's partSize rule is checked against ListParts.
    const recorded = await this.#listParts(key, uploadId, op);
    const ordered = checkCompletedParts(parts, recorded, this.partSize, op);
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    const etag = await this.#complete(key, uploadId, sorted, sdkConditions(options), op);
    const size = ordered.reduce((sum, part) => sum + part.size, 0);
    return { key, size, etag, lastModified: Date.now() };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const op = "objects.abortMultipart";
    this.#check(key, op);
    try {
      const s3 = await this.#sdk();
      await s3.client.send(
        new s3.sdk.AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }),
      );
    } catch (err) {
      if (!isNoSuchUpload(err) && !isMissingObject(err)) throw mapError(err, op);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsClient) this.#client?.destroy();
  }

  async #putMultipart(
    key: string,
    first: Buffer,
    rest: AsyncIterator<Uint8Array>,
    contentType: string | undefined,
    conditions: { IfMatch?: string; IfNoneMatch?: string },
    op: string,
  ): Promise<{ etag: string }> {
    const uploadId = await this.initMultipart(key, contentType === undefined ? {} : { contentType });
    try {
      const parts: CompletedPart[] = [];
      let part: { bytes: Buffer; done: boolean } = { bytes: first, done: false };
      for (let n = 1; ; n++) {
        if (n > this.maxPartCount)
          throw new InvalidArgumentError(`body needs more than ${this.maxPartCount} parts`, { op });
        parts.push({
          partNumber: n,
          etag: await this.#uploadPart(key, uploadId, n, part.bytes, part.bytes.byteLength, op),
        });
        if (part.done) break;
        part = await readUpTo(rest, this.partSize);
        if (part.done && part.bytes.byteLength === 0) break;
      }
      return { etag: await this.#complete(key, uploadId, parts, conditions, op) };
    } catch (err) {
      await this.abortMultipart(key, uploadId).catch(() => undefined);
      throw err;
    }
  }

  async #uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    payload: Uint8Array | StreamedBody,
    size: number,
    op: string,
  ): Promise<string> {
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.UploadPartCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: payload instanceof StreamedBody ? payload.stream : payload,
          ContentLength: size,
        }),
        payload instanceof StreamedBody ? { abortSignal: payload.signal } : {},
      );
      return normalizeEtag(out.ETag ?? "");
    } catch (err) {
      if (payload instanceof StreamedBody) throw payload.release() ?? mapError(err, op);
      throw mapError(err, op);
    }
  }

  async presignPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string> {
    const op = "objects.presignPart";
    this.#check(key, op);
    assertPartNumber(partNumber, this.maxPartCount, op);
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > 604_800) {
      throw new InvalidArgumentError(`expiresInSeconds must be an integer in 1..604800, got ${expiresInSeconds}`, {
        op,
      });
    }
    const s3 = await this.#sdk();
    // The presigner is only needed by deployments that hand out part URLs: an optional package, loaded on first use.
    const { getSignedUrl } = await importOptional<typeof import("@aws-sdk/s3-request-presigner")>(
      "@aws-sdk/s3-request-presigner",
      "presigned part URLs",
    );
    return getSignedUrl(
      s3.client,
      new s3.sdk.UploadPartCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }),
      { expiresIn: expiresInSeconds },
    );
  }

  async listParts(key: string, uploadId: string): Promise<{ partNumber: number; etag: string; size: number }[]> {
    const op = "objects.listParts";
    this.#check(key, op);
    const recorded = await this.#listParts(key, uploadId, op);
    return [...recorded].sort(([a], [b]) => a - b).map(([partNumber, part]) => ({ partNumber, ...part }));
  }

  async #listParts(key: string, uploadId: string, op: string): Promise<Map<number, RecordedPart>> {
    const recorded = new Map<number, RecordedPart>();
    let marker: string | undefined;
    try {
      do {
        const s3 = await this.#sdk();
        const out = await s3.client.send(
          new s3.sdk.ListPartsCommand({
            Bucket: this.#bucket,
            Key: key,
            UploadId: uploadId,
            ...(marker === undefined ? {} : { PartNumberMarker: marker }),
          }),
        );
        for (const part of out.Parts ?? []) {
          if (part.PartNumber !== undefined)
            recorded.set(part.PartNumber, { etag: normalizeEtag(part.ETag ?? ""), size: part.Size ?? 0 });
        }
        marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
      } while (marker !== undefined);
    } catch (err) {
      throw mapError(err, op);
    }
    return recorded;
  }

  async #complete(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    conditions: { IfMatch?: string; IfNoneMatch?: string },
    op: string,
  ): Promise<string> {
    try {
      const s3 = await this.#sdk();
      const out = await s3.client.send(
        new s3.sdk.CompleteMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: quote(p.etag) })) },
          ...conditions,
        }),
      );
      return normalizeEtag(out.ETag ?? "");
    } catch (err) {
      throw mapError(err, op);
    }
  }

  #check(key: string, op: string): void {
    this.#open(op);
    assertObjectKey(key, op);
  }

  #open(op: string): void {
    if (this.#closed) throw new ClosedError("object store is closed", { op });
  }
}

function info(
  key: string,
  size: number | undefined,
  etag: string | undefined,
  modified: Date | undefined,
  contentType: string | undefined,
): ObjectInfo {
  return {
    key,
    size: size ?? 0,
    etag: normalizeEtag(etag ?? ""),
    lastModified: modified?.getTime() ?? 0,
    ...(contentType === undefined ? {} : { contentType }),
  };
}

/**
 * A streamed request body. Why: the SDK pipes a stream into the request without listening for
 * its errors, so a body that fails midway (a client that went away) would be an uncaught
 * error and leave the request waiting for bytes that never come. Here a failure aborts the
 * request and is kept, to be thrown instead of the abort.
 */
class StreamedBody {
  readonly stream: Readable;
  readonly #source: unknown;
  readonly #controller = new AbortController();
  #failure: unknown;

  /** `source` is the caller's body, released with the request's when the request failed. */
  constructor(chunks: AsyncIterable<Uint8Array>, source: unknown) {
    this.#source = source;
    this.stream = Readable.from(chunks, { objectMode: false });
    this.stream.on("error", (err) => {
      this.#failure ??= err;
      this.#controller.abort(err);
    });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * After a failed request: destroys the body, and the caller's stream under it, which waits
   * for reads that will never come otherwise (an open file, a request); returns the error the
   * body failed with, if it failed.
   */
  release(): unknown {
    this.stream.destroy();
    const source = this.#source as { destroy?: unknown; return?: unknown } | null;
    if (typeof source?.destroy === "function") source.destroy();
    else if (typeof source?.return === "function") void Promise.resolve(source.return()).catch(() => undefined);
    return this.#failure;
  }
}

/** The SDK's Node body is already a Readable; a missing body is an empty object. */
function bodyStream(body: unknown): Readable {
  if (body === undefined) return Readable.from([]);
  if (body instanceof Readable) return body;
  throw new TypeError("S3 returned a body that is not a Node stream (is this running outside Node?)");
}

/** The SDK's conditional-write parameters (PutObject and CompleteMultipartUpload share them). */
function sdkConditions(options: CompleteMultipartOptions): { IfMatch?: string; IfNoneMatch?: string } {
  return {
    ...(options.ifMatch === undefined ? {} : { IfMatch: quote(options.ifMatch) }),
    ...(options.ifNoneMatch === undefined ? {} : { IfNoneMatch: options.ifNoneMatch }),
  };
}

function quote(etag: string): string {
  return `"${normalizeEtag(etag)}"`;
}
