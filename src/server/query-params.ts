import type { FastifyRequest } from "fastify";
import { HttpError } from "./error-reply.js";
import { tenantKeyOf } from "./identity-policy.js";

/** The bounds of an integer query parameter; `max` defaults to the largest safe integer. */
export interface IntegerParamOptions {
  readonly min: number;
  readonly max?: number;
}

/** A text query parameter: at most `maxBytes` of UTF-8, never a control character. */
export interface TextParamOptions {
  readonly maxBytes: number;
}

/** Longest part of a refused value quoted back in the message. */
const maxQuotedChars = 40;

/**
 * The integer query parameter `name`, or `undefined` when the request does not carry it. Every
 * route reads paging and numeric parameters through this one parser, so each mistake answers
 * 400 `INVALID_ARGUMENT` worded the same way: `limit must be an integer in 1..1000, got "0"`
 * (`a positive integer` or `a non-negative integer` when there is no upper bound). Only
 * decimal digits count (no sign, exponent or fraction); an empty value is not "absent" but
 * refused, and so is a parameter given twice (`limit must be given once`).
 */
export function integerParam(request: FastifyRequest, name: string, options: IntegerParamOptions): number | undefined {
  const raw = single(request, name);
  return raw === undefined ? undefined : parseInteger(raw, name, options);
}

/**
 * The text query parameter `name` (a `prefix` or a `cursor`), or `undefined` when absent.
 * Longer than `maxBytes` or holding a control character: 400 `INVALID_ARGUMENT`,
 * `prefix must be at most 512 bytes without control characters` (the value is not quoted back).
 */
export function textParam(request: FastifyRequest, name: string, options: TextParamOptions): string | undefined {
  const raw = single(request, name);
  if (raw === undefined) return undefined;
  if (Buffer.byteLength(raw) > options.maxBytes || hasControlCharacter(raw)) {
    throw invalid(`${name} must be at most ${options.maxBytes} bytes without control characters`);
  }
  return raw;
}

/**
 * The `org` query parameter of an admin route (`/v1/tenants`, `/v1/tokens`, the bus admin and
 * name routes, the delete queue, file and upload listings), or `undefined` when absent. Given twice: `org must be given once`; given empty: `org must not
 * be empty` (both 400 `INVALID_ARGUMENT`); a malformed or reserved org id: 400 `INVALID_KEY`,
 * like any other bad tenant id, for every caller. Whether the caller may act on that org is
 * the route's check (`administeredOrg`).
 */
export function orgParam(request: FastifyRequest): string | undefined {
  const raw = single(request, "org");
  if (raw === "") throw invalid("org must not be empty");
  if (raw !== undefined) tenantKeyOf({ orgId: raw });
  return raw;
}

/**
 * Where an event stream resumes: the `Last-Event-ID` header (sent by a reconnecting
 * `EventSource`), else the `lastEventId` query parameter (for clients that cannot set headers);
 * `undefined` when neither is given or the one given is empty (an `EventSource` whose last
 * event had no id). A value that is not an event id is refused like any integer parameter,
 * named as it was sent: `Last-Event-ID must be a non-negative integer, got "abc"`.
 */
export function lastEventIdParam(request: FastifyRequest): number | undefined {
  const header = request.headers["last-event-id"];
  if (typeof header === "string" && header !== "") return parseInteger(header, "Last-Event-ID", { min: 0 });
  const raw = single(request, "lastEventId");
  return raw === undefined || raw === "" ? undefined : parseInteger(raw, "lastEventId", { min: 0 });
}

function single(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Record<string, string | string[] | undefined> | undefined)?.[name];
  if (Array.isArray(value)) throw invalid(`${name} must be given once`);
  return value;
}

function parseInteger(raw: string, name: string, options: IntegerParamOptions): number {
  const { min, max = Number.MAX_SAFE_INTEGER } = options;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  const expected =
    max !== Number.MAX_SAFE_INTEGER
      ? `an integer in ${min}..${max}`
      : min === 1
        ? "a positive integer"
        : min === 0
          ? "a non-negative integer"
          : `an integer of at least ${min}`;
  const quoted = raw.length > maxQuotedChars ? `${raw.slice(0, maxQuotedChars)}...` : raw;
  throw invalid(`${name} must be ${expected}, got ${JSON.stringify(quoted)}`);
}

function invalid(message: string): HttpError {
  return new HttpError(400, "INVALID_ARGUMENT", message);
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
