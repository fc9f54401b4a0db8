import type { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InvalidArgumentError } from "../../errors.js";
import {
  CHECKSUM_ALGORITHMS,
  type ResumableUploadStatus,
  type ResumableUploads,
  sanitizeContentType,
} from "../../uploads/index.js";
import { HttpError } from "../error-reply.js";
import type { RequestIdentity } from "../identity.js";
import { identityOf } from "../request-context.js";

/** Options of {@link registerTusRoutes}. */
export interface TusRouteOptions {
  resumable: ResumableUploads;
  /** The owner id of a caller: its tenant id (`org/users/user` or `org/org`). */
  ownerOf(identity: RequestIdentity): string;
  /** Largest upload accepted, announced as `Tus-Max-Size`. */
  maxUploadSize: number;
}

/** Where the tus endpoint lives; an upload's URL is this plus its claim id. */
export const tusPrefix = "/v1/tus/";

const TUS_VERSION = "1.0.0";
const EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum";
const OFFSET_TYPE = "application/offset+octet-stream";

/**
 * Cross-origin access for browser clients (Uppy, tus-js-client on another origin). Any origin:
 * callers authenticate with a bearer token, never a cookie, so a foreign page gains nothing it
 * could not do with the token itself.
 */
const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": [
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Storeroom-File-Key",
  ].join(", "),
};
const PREFLIGHT_HEADERS = {
  "Access-Control-Allow-Methods": "POST, HEAD, PATCH, DELETE, OPTIONS",
  "Access-Control-Allow-Headers": [
    "Authorization",
    "Content-Type",
    "Tus-Resumable",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "X-HTTP-Method-Override",
    "X-Requested-With",
  ].join(", "),
  "Access-Control-Max-Age": "86400",
};

/**
 * A tus 1.0.0 server (https://tus.io/protocols/resumable-upload) on the resumable uploads:
 * core protocol plus the creation, creation-with-upload, termination, expiration and checksum
 * extensions. `POST /v1/tus/` creates (metadata `filename`/`name`, `filetype`/`type`,
 * `public`), `HEAD` reports `Upload-Offset`, `PATCH` appends, `DELETE` terminates, `OPTIONS`
 * advertises. `X-HTTP-Method-Override` on a POST is honoured for clients behind proxies that
 * only pass GET and POST. Every answer carries CORS headers (errors included, so a browser can
 * read them); `OPTIONS` doubles as the CORS preflight.
 */
export function registerTusRoutes(app: FastifyInstance, options: TusRouteOptions): void {
  const { resumable, ownerOf } = options;
  app.removeAllContentTypeParsers();
  // Bodies stream straight into the upload; resumable.append cuts and checks them.
  app.addContentTypeParser("*", (_req, payload, done) => done(null, payload));

  // onSend, not onRequest: it also runs for answers of hooks that ran first (authentication).
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.headers(CORS_HEADERS);
    return payload;
  });
  app.addHook("onRequest", async (request, reply) => {
    reply.header("Tus-Resumable", TUS_VERSION);
    if (request.method === "OPTIONS") return;
    if (request.headers["tus-resumable"] !== TUS_VERSION) {
      reply.header("Tus-Version", TUS_VERSION);
      throw new HttpError(412, "PRECONDITION_FAILED", `Tus-Resumable must be ${TUS_VERSION}`);
    }
  });

  const discover = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(204)
      .headers({
        ...PREFLIGHT_HEADERS,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": String(options.maxUploadSize),
        "Tus-Checksum-Algorithm": CHECKSUM_ALGORITHMS.join(","),
      })
      .send();
  app.options("/v1/tus/", { config: { auth: "none" } }, discover);
  app.options("/v1/tus/:id", { config: { auth: "none" } }, discover);

  app.post("/v1/tus/", async (request, reply) => {
    const owner = ownerOf(identityOf(request));
    if (request.headers["upload-defer-length"] !== undefined) {
      throw new HttpError(400, "INVALID_ARGUMENT", "Upload-Defer-Length is not supported: send Upload-Length");
    }
    // Upload-Length: 0 creates an empty file, complete (published) at once.
    const size = integerHeader(request, "upload-length");
    const metadataHeader = singleHeader(request, "upload-metadata") ?? "";
    const metadata = parseMetadata(metadataHeader);
    const filename = metadata.get("filename") ?? metadata.get("name") ?? "upload";
    const declaredType = metadata.get("filetype") ?? metadata.get("type") ?? metadata.get("contentType");
    const publicFlag = metadata.get("public");
    if (publicFlag !== undefined && publicFlag !== "true" && publicFlag !== "false") {
      throw new HttpError(400, "INVALID_ARGUMENT", 'metadata "public" must be true or false');
    }
    const created = await resumable.create(owner, {
      filename,
      size,
      contentType: sanitizeContentType(declaredType, filename),
      public: publicFlag === "true",
      metadata: metadataHeader,
    });
    let status: ResumableUploadStatus = created;
    if (hasBody(request)) {
      try {
        status = await resumable.append(owner, created.claimId, 0, bodyOf(request), appendOptions(request));
      } catch (err) {
        // The client gets an error and no Location, so it could never resume or terminate this
        // upload: it is terminated, instead of holding one of the owner's unfinished uploads.
        await resumable.terminate(owner, created.claimId).catch(() => undefined);
        throw err;
      }
    }
    return reply.code(201).header("Location", `${tusPrefix}${created.claimId}`).headers(progressHeaders(status)).send();
  });

  app.head("/v1/tus/:id", async (request, reply) => {
    const { id } = request.params as { id: string };
    const status = await resumable.status(ownerOf(identityOf(request)), id);
    const headers: Record<string, string> = {
      ...progressHeaders(status),
      "Upload-Length": String(status.size),
      "Cache-Control": "no-store",
    };
    if (status.metadata !== "") headers["Upload-Metadata"] = status.metadata;
    return reply.code(200).headers(headers).send();
  });

  const patch = async (request: FastifyRequest, reply: FastifyReply) => {
    const { id } = request.params as { id: string };
    if (mediaType(request) !== OFFSET_TYPE) {
      throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", `PATCH takes Content-Type: ${OFFSET_TYPE}`);
    }
    const offset = integerHeader(request, "upload-offset");
    const status = await resumable.append(
      ownerOf(identityOf(request)),
      id,
      offset,
      bodyOf(request),
      appendOptions(request),
    );
    return reply.code(204).headers(progressHeaders(status)).send();
  };
  const terminate = async (request: FastifyRequest, reply: FastifyReply) => {
    const { id } = request.params as { id: string };
    await resumable.terminate(ownerOf(identityOf(request)), id);
    return reply.code(204).send();
  };
  app.patch("/v1/tus/:id", patch);
  app.delete("/v1/tus/:id", terminate);
  app.post("/v1/tus/:id", async (request, reply) => {
    const override = singleHeader(request, "x-http-method-override")?.toUpperCase();
    if (override === "PATCH") return patch(request, reply);
    if (override === "DELETE") return terminate(request, reply);
    throw new HttpError(405, "METHOD_NOT_ALLOWED", "an upload takes HEAD, PATCH and DELETE");
  });
}

function progressHeaders(status: ResumableUploadStatus): Record<string, string> {
  const headers: Record<string, string> = { "Upload-Offset": String(status.offset) };
  if (status.complete) headers["Storeroom-File-Key"] = status.key;
  else headers["Upload-Expires"] = new Date(status.expiresAt).toUTCString();
  return headers;
}

function appendOptions(request: FastifyRequest) {
  const length = singleHeader(request, "content-length");
  const checksum = singleHeader(request, "upload-checksum");
  return {
    ...(length === undefined || !/^\d+$/.test(length) ? {} : { contentLength: Number(length) }),
    ...(checksum === undefined ? {} : { checksum: parseChecksum(checksum) }),
  };
}

function parseChecksum(header: string): { algorithm: string; digest: Buffer } {
  const [algorithm = "", encoded = "", extra] = header.trim().split(" ");
  if (extra !== undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new HttpError(400, "INVALID_ARGUMENT", "Upload-Checksum must be '<algorithm> <base64 digest>'");
  }
  return { algorithm: algorithm.toLowerCase(), digest: Buffer.from(encoded, "base64") };
}

/**
 * `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent). Keys
 * are unique and free of spaces and commas; anything else -> 400.
 */
export function parseMetadata(header: string): Map<string, string> {
  const entries = new Map<string, string>();
  if (header.trim() === "") return entries;
  for (const pair of header.split(",")) {
    const [key = "", value, extra] = pair.trim().split(" ");
    const valid =
      key !== "" &&
      extra === undefined &&
      !entries.has(key) &&
      (value === undefined || /^[A-Za-z0-9+/]*={0,2}$/.test(value));
    if (!valid)
      throw new HttpError(400, "INVALID_ARGUMENT", "Upload-Metadata must be comma-separated 'key base64' pairs");
    entries.set(key, value === undefined ? "" : Buffer.from(value, "base64").toString("utf8"));
  }
  return entries;
}

function hasBody(request: FastifyRequest): boolean {
  const length = singleHeader(request, "content-length");
  const chunked = request.headers["transfer-encoding"] !== undefined;
  return mediaType(request) === OFFSET_TYPE && (chunked || (length !== undefined && length !== "0"));
}

function bodyOf(request: FastifyRequest): AsyncIterable<Uint8Array> {
  const body = request.body as Readable | undefined;
  return body ?? (async function* () {})();
}

function mediaType(request: FastifyRequest): string {
  return (singleHeader(request, "content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

function singleHeader(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function integerHeader(request: FastifyRequest, name: string): number {
  const value = singleHeader(request, name);
  if (value === undefined || !/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer`, { op: "tus.request" });
  }
  return Number(value);
}
