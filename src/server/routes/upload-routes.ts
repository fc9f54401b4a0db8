import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { isStoreError } from "../../errors.js";
import type { ObjectStore } from "../../objects/index.js";
import type { ClaimStore, UploadClaim, UploadService } from "../../uploads/index.js";
import { openDownload } from "../../uploads/index.js";
import { HttpError } from "../error-reply.js";
import type { RequestIdentity } from "../identity.js";
import { identityOf } from "../request-context.js";

/** Options of {@link registerUploadRoutes}. */
export interface UploadRouteOptions {
  uploads: UploadService;
  claims: ClaimStore;
  /** Where uploaded files live. */
  files: ObjectStore;
  /** The owner id of a caller: its tenant id (`org/users/user` or `org/org`). */
  ownerOf(identity: RequestIdentity): string;
  /** Largest JSON body, bytes. */
  maxJsonBytes: number;
}

const filesPrefix = "/v1/files/";

/**
 * Upload and download routes: `POST /v1/uploads`, `PUT /v1/uploads/:claimId/parts/:n`
 * (raw streamed body), `GET /v1/uploads/:claimId/parts`, `POST /v1/uploads/:claimId/complete`,
 * `DELETE /v1/uploads/:claimId`, and `GET /v1/files/*` (anonymous for `pub/`, owner-only otherwise).
 */
export async function registerUploadRoutes(app: FastifyInstance, options: UploadRouteOptions): Promise<void> {
  const { uploads, ownerOf } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    "application/json",
    { parseAs: "string", bodyLimit: options.maxJsonBytes },
    (_req, body, done) => {
      try {
        done(null, body === "" ? undefined : JSON.parse(body as string));
      } catch {
        done(new HttpError(400, "INVALID_ARGUMENT", "malformed JSON body"), undefined);
      }
    },
  );
  // Part bodies stream straight to the object store; the upload service enforces the part size.
  app.addContentTypeParser("*", (_req, payload, done) => done(null, payload));

  app.post("/v1/uploads", async (request, reply) => {
    const body = jsonObject(request.body);
    const result = await uploads.initUpload(ownerOf(identityOf(request)), {
      filename: body.filename as string,
      size: body.size as number,
      ...(body.contentType === undefined ? {} : { contentType: body.contentType as string }),
      ...(body.public === undefined ? {} : { public: body.public as boolean }),
    });
    return reply.code(201).send(result);
  });

  app.put("/v1/uploads/:claimId/parts/:n", async (request) => {
    const { claimId, n } = request.params as { claimId: string; n: string };
    if (!(request.body instanceof Readable)) {
      throw new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send the part as the raw body (application/octet-stream)");
    }
    const length = request.headers["content-length"];
    const contentLength = length === undefined ? undefined : Number(length);
    return uploads.uploadPart(ownerOf(identityOf(request)), {
      claimId,
      partNumber: /^\d+$/.test(n) ? Number(n) : Number.NaN,
      body: request.body,
      ...(contentLength === undefined || !Number.isSafeInteger(contentLength) ? {} : { contentLength }),
    });
  });

  app.get("/v1/uploads/:claimId/parts", async (request) => {
    const { claimId } = request.params as { claimId: string };
    return uploads.listParts(ownerOf(identityOf(request)), claimId);
  });

  app.post("/v1/uploads/:claimId/complete", async (request) => {
    const { claimId } = request.params as { claimId: string };
    const done = await uploads.completeUpload(ownerOf(identityOf(request)), claimId);
    return { ...done, url: filesPrefix + done.key.split("/").map(encodeURIComponent).join("/") };
  });

  app.delete("/v1/uploads/:claimId", async (request, reply) => {
    const { claimId } = request.params as { claimId: string };
    await uploads.abortUpload(ownerOf(identityOf(request)), claimId);
    return reply.code(204).send();
  });

  app.get("/v1/files/*", { config: { auth: "optional" } }, async (request, reply) => {
    const principal = request.identity === null ? undefined : ownerOf(request.identity);
    const download = await openDownload(rawKey(request), {
      objects: options.files,
      ...(principal === undefined ? {} : { principal }),
      acl: { canRead: (who, key) => canRead(options.claims, who, key) },
    });
    if (download === null) throw new HttpError(404, "NOT_FOUND", "no such file");
    return reply.headers(download.headers).send(download.object.body);
  });
}

/** The key exactly as it appears in the URL (still percent-encoded), so it is decoded once. */
function rawKey(request: FastifyRequest): string {
  const path = (request.raw.url ?? "").split("?")[0] ?? "";
  return path.startsWith(filesPrefix) ? path.slice(filesPrefix.length) : "";
}

/**
 * Only objects that arrived through a completed upload are served: `pub/` ones to everybody,
 * others to the tenant that uploaded them. Anything else in the store (tenant databases, a
 * pending upload) is never readable here. A public key without an upload is a plain 404.
 */
async function canRead(claims: ClaimStore, principal: string | undefined, key: string): Promise<boolean> {
  let claim: UploadClaim | undefined;
  try {
    claim = await claims.getByKey(key);
  } catch (err) {
    if (!isStoreError(err, "CLAIM_NOT_FOUND")) throw err;
  }
  const uploaded = claim !== undefined && claim.status === "uploaded";
  if (key.startsWith("pub/")) {
    if (!uploaded) throw new HttpError(404, "NOT_FOUND", "no such file");
    return true;
  }
  return uploaded && principal !== undefined && claim?.createdBy === principal;
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "INVALID_ARGUMENT", "expected a JSON object body");
  }
  return body as Record<string, unknown>;
}
