import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { isStoreError } from "../errors.js";

/** The JSON body of every error answer: `{ error: { code, message } }`. `code` is stable. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** HTTP status per {@link StoreError} code; codes not listed answer 500 `INTERNAL`. */
const statusByCode: Readonly<Record<string, number>> = Object.freeze({
  NOT_FOUND: 404,
  CLAIM_NOT_FOUND: 404,
  UNKNOWN_PEER: 404,
  INVALID_KEY: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  ACCESS_DENIED: 403,
  CONFLICT: 409,
  VERSION_CONFLICT: 412,
  DUPLICATE_ID: 409,
  UNIQUE_VIOLATION: 409,
  CONSTRAINT: 409,
  READ_ONLY: 409,
  // A quota does not clear by waiting, so it is a conflict with the tenant's state, not a rate limit.
  QUOTA_EXCEEDED: 409,
  TOO_LARGE: 413,
  // tus: "460 Checksum Mismatch".
  CHECKSUM_MISMATCH: 460,
  // The cap on unfinished uploads clears as uploads complete or expire: retry later.
  LIMIT_EXCEEDED: 429,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED: 501,
  UPLOAD_FAILED: 502,
  CLOSED: 503,
  BUSY: 503,
});

/** Fastify's own error codes that describe a client mistake. */
const fastifyCodes: Readonly<Record<string, [number, string]>> = Object.freeze({
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "TOO_LARGE"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "UNSUPPORTED_MEDIA_TYPE"],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "INVALID_ARGUMENT"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, "INVALID_ARGUMENT"],
  FST_ERR_VALIDATION: [400, "INVALID_ARGUMENT"],
  FST_ERR_BAD_URL: [400, "INVALID_ARGUMENT"],
  FST_ERR_MAX_PARAM_LENGTH: [414, "URI_TOO_LONG"],
  FST_ERR_CTP_INVALID_TYPE: [400, "INVALID_ARGUMENT"],
  FST_ERR_CTP_INVALID_HEADER: [400, "INVALID_ARGUMENT"],
});

/** An error answered with its own status and code, for failures detected by the server itself. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = "HttpError";
    this.statusCode = statusCode;
    this.code = code;
  }
}

/**
 * Maps any thrown value to a status and a body. Store errors keep their code and message;
 * anything unexpected becomes 500 `INTERNAL` with a generic message, so internals never leak.
 */
export function errorReply(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof HttpError) return reply(err.statusCode, err.code, err.message);
  if (isStoreError(err)) {
    const status = statusByCode[err.code];
    if (status !== undefined) return reply(status, err.code, err.message);
    return reply(500, "INTERNAL", "internal error");
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    const known = fastifyCodes[code];
    if (known !== undefined) return reply(known[0], known[1], (err as Error).message);
    if (code === "ERR_JSON" || (err as Error).name === "SyntaxError")
      return reply(400, "INVALID_ARGUMENT", "malformed JSON body");
  }
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    return reply(statusCode, "INVALID_ARGUMENT", (err as Error).message);
  }
  return reply(500, "INTERNAL", "internal error");
}

/**
 * Answers a request Node's HTTP parser refused before any route ran (malformed request line or
 * headers, headers too large, a request timeout) with the same JSON shape, then closes the socket.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? ([431, "TOO_LARGE", "request headers too large"] as const)
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? ([408, "TIMEOUT", "request timed out"] as const)
        : ([400, "INVALID_ARGUMENT", "malformed HTTP request"] as const);
  const text = JSON.stringify(reply(status, code, message).body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}

function reply(status: number, code: string, message: string): { status: number; body: ErrorBody } {
  return { status, body: { error: { code, message } } };
}
