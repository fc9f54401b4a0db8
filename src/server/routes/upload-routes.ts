import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import type { UploadService } from "../../uploads/index.js";
import { HttpError } from "../error-reply.js";
import { requireJsonBody } from "../json-body.js";
import { identityOf } from "../request-context.js";
import { type FileRouteOptions, fileUrl, keyPageOf, orgListing, registerFileRoutes } from "./file-routes.js";

/** Options of {@link registerUploadRoutes}. */
export interface UploadRouteOptions extends FileRouteOptions {
  uploads: UploadService;
  /** Largest JSON body, bytes. */
  maxJsonBytes: number;
}

/**
 * Upload routes: `POST /v1/uploads` (JSON only), `GET /v1/uploads` (the caller's unfinished
 * uploads, paged; an admin's `?org=`: every unfinished upload of its org, with owners), `GET /v1/uploads/:claimId`, `PUT /v1/uploads/:claimId/parts/:n` (raw
 * streamed body), `GET /v1/uploads/:claimId/parts`, `POST /v1/uploads/:claimId/complete`,
 * `DELETE /v1/uploads/:claimId` (abort; 409 once complete), plus the files API
 * ({@link registerFileRoutes}) in the same scope, which shares its body parsers.
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
  registerFileRoutes(app, options);

  app.post("/v1/uploads", { preParsing: requireJsonBody }, async (request, reply) => {
    const body = jsonObject(request.body);
    for (const flag of ["public", "direct"] as const) {
      if (body[flag] !== undefined && typeof body[flag] !== "boolean") {
        throw new HttpError(400, "INVALID_ARGUMENT", `${flag} must be true or false`);
      }
    }
    const result = await uploads.initUpload(ownerOf(identityOf(request)), {
      filename: body.filename as string,
      size: body.size as number,
      ...(body.contentType === undefined ? {} : { contentType: body.contentType as string }),
      ...(body.public === undefined ? {} : { public: body.public as boolean }),
      ...(body.direct === undefined ? {} : { direct: body.direct as boolean }),
    });
    return reply.code(201).send(result);
  });

  app.get("/v1/uploads", async (request) => {
    const listOptions = keyPageOf(request);
    const org = orgListing(request);
    const page =
      org === undefined
        ? await options.claims.listByOwner(ownerOf(identityOf(request)), "pending", listOptions)
        : await options.claims.listByOwnerPrefix(`${org}/`, "pending", listOptions);
    return {
      uploads: page.claims.map((claim) => ({
        ...(org === undefined ? {} : { owner: claim.createdBy }),
        claimId: claim.id,
        key: claim.key,
        size: claim.size,
        contentType: claim.contentType,
        originalFilename: claim.originalFilename,
        public: claim.public,
        partSize: claim.partSize,
        partCount: claim.partCount,
        createdAt: claim.createdAt,
        expiresAt: claim.expiresAt,
      })),
      ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
    };
  });

  app.get("/v1/uploads/:claimId", async (request) => {
    const { claimId } = request.params as { claimId: string };
    const progress = await uploads.listParts(ownerOf(identityOf(request)), claimId);
    return progress.status === "uploaded" ? { ...progress, url: fileUrl(progress.key) } : progress;
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
    return { ...done, url: fileUrl(done.key) };
  });

  app.delete("/v1/uploads/:claimId", async (request, reply) => {
    const { claimId } = request.params as { claimId: string };
    await uploads.abortUpload(ownerOf(identityOf(request)), claimId);
    return reply.code(204).send();
  });
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "INVALID_ARGUMENT", "expected a JSON object body");
  }
  return body as Record<string, unknown>;
}
