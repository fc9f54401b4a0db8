import type { FastifyRequest } from "fastify";
import { HttpError } from "./error-reply.js";

/**
 * A `preParsing` hook for every route that takes a JSON body (`POST /v1/state`,
 * `POST /v1/state/:group`, `POST /v1/uploads`, `POST /v1/tokens`, `PUT /v1/bus/names/:name`):
 * a request with a body must declare it `Content-Type: application/json` (parameters such as
 * `charset` allowed), else 415 `UNSUPPORTED_MEDIA_TYPE` before any of the body is read. A
 * request without a body passes (the route decides whether it needs one).
 */
export async function requireJsonBody(request: FastifyRequest): Promise<void> {
  if (!hasBody(request) || isJsonType(request.headers["content-type"])) return;
  throw jsonBodyRequired(request);
}

/**
 * The 415 answer for a body of another type, naming the route and the type it got:
 * `POST /v1/tokens accepts only a JSON body (Content-Type: application/json), got text/plain`.
 */
export function jsonBodyRequired(request: FastifyRequest): HttpError {
  const route = `${request.method} ${request.routeOptions.url ?? (request.url.split("?")[0] as string)}`;
  const declared = mediaType(request.headers["content-type"]);
  const got = declared === "" ? "no Content-Type" : declared.slice(0, 100);
  return new HttpError(
    415,
    "UNSUPPORTED_MEDIA_TYPE",
    `${route} accepts only a JSON body (Content-Type: application/json), got ${got}`,
  );
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers["content-length"];
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

function isJsonType(contentType: string | undefined): boolean {
  return mediaType(contentType) === "application/json";
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}
