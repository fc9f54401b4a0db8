import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isStoreError } from "../../errors.js";
import { MAX_OBJECT_KEY_BYTES, type ObjectInfo, type ObjectStore } from "../../objects/index.js";
import {
  type ClaimStore,
  type DeleteQueue,
  downloadHeaders,
  parseDownloadKey,
  quotedEtag,
  type UploadClaim,
} from "../../uploads/index.js";
import { evaluatePreconditions, ifRangeHolds } from "../conditional-request.js";
import { HttpError } from "../error-reply.js";
import { parseRange } from "../http-range.js";
import type { RequestIdentity } from "../identity.js";
import { integerParam, orgParam, textParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";

/** Options of {@link registerFileRoutes}. */
export interface FileRouteOptions {
  claims: ClaimStore;
  deleteQueue: DeleteQueue;
  /** Where uploaded files live. */
  files: ObjectStore;
  /** The owner id of a caller: its tenant id (`org/users/user` or `org/org`). */
  ownerOf(identity: RequestIdentity): string;
}

/** Largest page of a listing by key. */
const maxPageSize = 1000;

/** Path prefix of single files; the key follows, each segment percent-encoded. */
export const filesPrefix = "/v1/files/";

/** The download URL path of `key`. */
export function fileUrl(key: string): string {
  return filesPrefix + key.split("/").map(encodeURIComponent).join("/");
}

/**
 * The files API over completed uploads: `GET /v1/files` (the caller's files, paged; an
 * admin's `?org=`: every file of its org, with owners),
 * `GET`/`HEAD /v1/files/<key>` (anonymous for `pub/`, owner-only otherwise; Range, ETag,
 * preconditions, Content-Disposition) and `DELETE /v1/files/<key>` (owner; through the delete queue).
 */
export function registerFileRoutes(app: FastifyInstance, options: FileRouteOptions): void {
  const { claims, ownerOf } = options;

  app.get("/v1/files", async (request) => {
    const listOptions = keyPageOf(request);
    const org = orgListing(request);
    const page =
      org === undefined
        ? await claims.listByOwner(ownerOf(identityOf(request)), "uploaded", listOptions)
        : await claims.listByOwnerPrefix(`${org}/`, "uploaded", listOptions);
    return {
      files: page.claims.map((claim) => ({
        ...(org === undefined ? {} : { owner: claim.createdBy }),
        key: claim.key,
        url: fileUrl(claim.key),
        size: claim.size,
        contentType: claim.contentType,
        originalFilename: claim.originalFilename,
        public: claim.public,
        createdAt: claim.createdAt,
      })),
      ...(page.cursor === undefined ? {} : { cursor: page.cursor }),
    };
  });

  const download = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = parseDownloadKey(rawKey(request));
    const principal = request.identity === null ? undefined : ownerOf(request.identity);
    const claim = await readableClaim(claims, principal, key);
    const query = request.query as Record<string, string | undefined>;
    const headerOptions = {
      filename: claim.originalFilename,
      disposition: query.download === undefined ? ("inline" as const) : ("attachment" as const),
    };
    const h = request.headers;
    const plain =
      request.method === "GET" &&
      h.range === undefined &&
      h["if-match"] === undefined &&
      h["if-none-match"] === undefined;
    if (plain) {
      const object = await options.files.get(key);
      if (object === null) throw new HttpError(404, "NOT_FOUND", "no such file");
      return reply.headers(downloadHeaders(key, object, headerOptions)).send(object.body);
    }
    const info = await options.files.head(key);
    if (info === null) throw new HttpError(404, "NOT_FOUND", "no such file");
    const headers = downloadHeaders(key, info, headerOptions);
    const outcome = evaluatePreconditions(h, quotedEtag(info.etag), request.method);
    if (outcome === "failed") throw new HttpError(412, "PRECONDITION_FAILED", "the file's ETag does not match");
    if (outcome === "not-modified") return reply.code(304).headers(notModifiedHeaders(headers)).send();
    if (request.method === "HEAD") return reply.headers(headers).send();
    const ifRange = h["if-range"];
    const range = ifRangeHolds(typeof ifRange === "string" ? ifRange : undefined, quotedEtag(info.etag))
      ? parseRange(h.range, info.size)
      : undefined;
    if (range?.kind === "unsatisfiable") {
      return reply
        .code(416)
        .header("Content-Range", `bytes */${info.size}`)
        .type("application/json; charset=utf-8")
        .send({ error: { code: "RANGE_NOT_SATISFIABLE", message: `the file has ${info.size} bytes` } });
    }
    if (range?.kind === "partial") return sendRange(reply, options.files, info, headers, range);
    const object = await options.files.get(key);
    if (object === null) throw new HttpError(404, "NOT_FOUND", "no such file");
    return reply.headers(headers).send(object.body);
  };
  app.get("/v1/files/*", { config: { auth: "optional" }, exposeHeadRoute: false }, download);
  app.head("/v1/files/*", { config: { auth: "optional" } }, download);

  app.delete("/v1/files/*", async (request, reply) => {
    const key = parseDownloadKey(rawKey(request));
    try {
      await claims.release(key, ownerOf(identityOf(request)), options.deleteQueue);
    } catch (err) {
      if (isStoreError(err, "CLAIM_NOT_FOUND")) throw new HttpError(404, "NOT_FOUND", "no such file of yours");
      throw err;
    }
    return reply.code(204).send();
  });
}

async function sendRange(
  reply: FastifyReply,
  files: ObjectStore,
  info: ObjectInfo,
  headers: Record<string, string>,
  range: { start: number; end: number },
) {
  const object = await files.get(info.key, { range });
  if (object === null) throw new HttpError(404, "NOT_FOUND", "no such file");
  const served = object.range ?? range;
  return reply
    .code(206)
    .headers({
      ...headers,
      "Content-Length": String(served.end - served.start),
      "Content-Range": `bytes ${served.start}-${served.end - 1}/${info.size}`,
    })
    .send(object.body);
}

/** A 304 carries the validators and caching headers of the 200 it replaces, never a body's. */
function notModifiedHeaders(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of ["ETag", "Last-Modified", "Cache-Control", "Content-Disposition"]) {
    const value = headers[name];
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}

/** The key exactly as it appears in the URL (still percent-encoded), so it is decoded once. */
function rawKey(request: FastifyRequest): string {
  const path = (request.raw.url ?? "").split("?")[0] ?? "";
  return path.startsWith(filesPrefix) ? path.slice(filesPrefix.length) : "";
}

/**
 * Only objects that arrived through a completed upload are served: `pub/` ones to everybody,
 * others to the tenant that uploaded them (403 for anyone else). Anything else in the store
 * (tenant databases, a pending upload) is never readable here; a public key without an upload
 * is a plain 404.
 */
async function readableClaim(claims: ClaimStore, principal: string | undefined, key: string): Promise<UploadClaim> {
  let claim: UploadClaim | undefined;
  try {
    claim = await claims.getByKey(key);
  } catch (err) {
    if (!isStoreError(err, "CLAIM_NOT_FOUND")) throw err;
  }
  const uploaded = claim !== undefined && claim.status === "uploaded" ? claim : undefined;
  if (key.startsWith("pub/")) {
    if (uploaded === undefined) throw new HttpError(404, "NOT_FOUND", "no such file");
    return uploaded;
  }
  if (uploaded === undefined || principal === undefined || uploaded.createdBy !== principal) {
    throw new HttpError(403, "ACCESS_DENIED", `not allowed to read ${key}`);
  }
  return uploaded;
}

/**
 * `?org=` on a listing: an admin lists every tenant's items of its org (an operator: any org),
 * each with its `owner`. `undefined` without the parameter (the caller's own items).
 */
export function orgListing(request: FastifyRequest): string | undefined {
  const requested = orgParam(request);
  return requested === undefined ? undefined : administeredOrg(identityOf(request), requested);
}

/**
 * `?prefix=&cursor=&limit=` of a listing by object key (files, unfinished uploads): `limit`
 * 1..1000 (default 100), `prefix` and `cursor` (the previous page's last key) at most an object
 * key long.
 */
export function keyPageOf(request: FastifyRequest): { prefix?: string; cursor?: string; limit?: number } {
  const prefix = textParam(request, "prefix", { maxBytes: MAX_OBJECT_KEY_BYTES });
  const cursor = textParam(request, "cursor", { maxBytes: MAX_OBJECT_KEY_BYTES });
  const limit = integerParam(request, "limit", { min: 1, max: maxPageSize });
  return {
    ...(prefix === undefined ? {} : { prefix }),
    ...(cursor === undefined ? {} : { cursor }),
    ...(limit === undefined ? {} : { limit }),
  };
}
