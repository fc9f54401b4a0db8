import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingHttpHeaders } from "node:http";
import { InvalidKeyError } from "../errors.js";
import { TenantKey, type TenantScope } from "./tenant-key.js";

/** Who a request acts for, as the gateway stated it in `X-Org-Id`, `X-User-Id`, `X-Roles`. */
export interface GatewayIdentity {
  /** `X-Org-Id`, or `undefined` when absent or unusable. */
  readonly orgId: string | undefined;
  /** `X-User-Id`, or `undefined` when absent or unusable. */
  readonly userId: string | undefined;
  /** `X-Roles`, comma-separated, trimmed, empty entries dropped. */
  readonly roles: readonly string[];
}

/** The inbound headers that carry identity; strip them from requests that did not come through the gateway. */
export const GATEWAY_IDENTITY_HEADERS = Object.freeze(["x-org-id", "x-user-id", "x-roles"] as const);

/** Header values longer than this many bytes count as absent. */
export const MAX_GATEWAY_HEADER_BYTES = 256;

const storage = new AsyncLocalStorage<GatewayIdentity>();

/**
 * Removes the identity headers in place, so a client talking to the service directly cannot
 * claim to be any tenant.
 */
export function stripGatewayHeaders(headers: IncomingHttpHeaders): void {
  for (const name of GATEWAY_IDENTITY_HEADERS) delete headers[name];
}

/**
 * Reads the identity headers. A value that is repeated, over {@link MAX_GATEWAY_HEADER_BYTES}
 * bytes or contains a control byte counts as absent; nothing here throws.
 */
export function readGatewayIdentity(headers: IncomingHttpHeaders): GatewayIdentity {
  const roles = (headerValue(headers, "x-roles") ?? "")
    .split(",")
    .map((role) => role.trim())
    .filter((role) => role !== "");
  return Object.freeze({
    orgId: headerValue(headers, "x-org-id"),
    userId: headerValue(headers, "x-user-id"),
    roles: Object.freeze(roles),
  });
}

/** Runs `fn` with `identity` bound as the {@link currentGatewayIdentity} of everything it awaits. */
export function runWithGatewayIdentity<T>(identity: GatewayIdentity, fn: () => T): T {
  return storage.run(identity, fn);
}

/** The identity bound by {@link runWithGatewayIdentity} or {@link requireGateway}, or `undefined` outside one. */
export function currentGatewayIdentity(): GatewayIdentity | undefined {
  return storage.getStore();
}

/**
 * The tenant of the current request: the user's database (scope `"user"`, needs org and user)
 * or the org's (scope `"org"`, needs the org). Throws {@link InvalidKeyError} when the identity
 * is missing or its slugs are invalid.
 */
export function tenantKeyFromIdentity(
  identity: GatewayIdentity | undefined = currentGatewayIdentity(),
  scope: TenantScope = "user",
): TenantKey {
  if (identity?.orgId === undefined || (scope === "user" && identity.userId === undefined)) {
    throw new InvalidKeyError(`no gateway identity for a ${scope} tenant`, { op: "tenants.identity" });
  }
  const key = new TenantKey({ orgId: identity.orgId, userId: identity.userId, scope });
  key.validate();
  return key;
}

/** The parts of a request {@link requireGateway} reads: `node:http`'s IncomingMessage, or Fastify's `request.raw`. */
export interface GatewayRequest {
  headers: IncomingHttpHeaders;
  socket?: { remoteAddress?: string | undefined } | undefined;
}

/** The parts of a response {@link requireGateway} writes: `node:http`'s ServerResponse, or Fastify's `reply.raw`. */
export interface GatewayResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** Options of {@link requireGateway}. */
export interface RequireGatewayOptions {
  /**
   * Whether the request came through the gateway. Untrusted requests have their identity
   * headers stripped first (and so get 503). Default: the peer is a loopback address.
   */
  trusted?: (request: GatewayRequest) => boolean;
  /** `"user"` (default) requires `X-Org-Id` and `X-User-Id`; `"org"` requires only `X-Org-Id`. */
  scope?: TenantScope;
}

/**
 * Strips untrusted identity headers, reads the identity and runs `next` with it bound (see
 * {@link currentGatewayIdentity}). When the identity the scope needs is missing it answers
 * 503 instead: a request without gateway headers means the service is reachable around the
 * gateway (a topology fault), not that the caller is unauthorized. Returns what `next` returns,
 * or `undefined` after answering 503.
 *
 * @example
 * ```ts
 * // node:http
 * http.createServer((req, res) => requireGateway(req, res, () => handle(req, res)));
 * // Fastify
 * app.addHook("onRequest", (request, reply, done) => requireGateway(request.raw, reply.raw, done));
 * // inside the handler
 * const db = await tenants.get(tenantKeyFromIdentity());
 * ```
 */
export function requireGateway<T>(
  request: GatewayRequest,
  response: GatewayResponse,
  next: () => T,
  options: RequireGatewayOptions = {},
): T | undefined {
  const trusted = options.trusted ?? isLoopback;
  if (!trusted(request)) stripGatewayHeaders(request.headers);
  const identity = readGatewayIdentity(request.headers);
  const scope = options.scope ?? "user";
  if (identity.orgId === undefined || (scope === "user" && identity.userId === undefined)) {
    response.statusCode = 503;
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ error: { code: "GATEWAY_REQUIRED", message: "gateway identity headers missing" } }));
    return undefined;
  }
  return storage.run(identity, next);
}

function isLoopback(request: GatewayRequest): boolean {
  const address = request.socket?.remoteAddress ?? "";
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const raw = headers[name];
  if (typeof raw !== "string") return undefined;
  const value = raw.trim();
  if (value === "" || Buffer.byteLength(value) > MAX_GATEWAY_HEADER_BYTES || hasControlByte(value)) return undefined;
  return value;
}

// Any C0 control byte or DEL makes a value count as absent.
function hasControlByte(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
