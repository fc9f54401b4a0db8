import { AsyncLocalStorage } from "node:async_hooks";
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { InvalidArgumentError, InvalidKeyError, isStoreError } from "../errors.js";
import { MAX_SLUG_LENGTH, TenantKey, type TenantScope } from "./tenant-key.js";

/** Who a request acts for, as the gateway stated it in `X-Org-Id`, `X-User-Id`, `X-Roles`. */
export interface GatewayIdentity {
  /** `X-Org-Id`, or `undefined` when the header is absent. */
  readonly orgId: string | undefined;
  /** `X-User-Id`, or `undefined` when the header is absent. */
  readonly userId: string | undefined;
  /** `X-Roles`, comma-separated and trimmed; empty when the header is absent. */
  readonly roles: readonly string[];
}

/** The inbound headers that carry identity; strip them from requests that did not come through the gateway. */
export const GATEWAY_IDENTITY_HEADERS = Object.freeze(["x-org-id", "x-user-id", "x-roles"] as const);

/** The header carrying the shared secret that proves a request came through the gateway (`trust: { secret }`). */
export const GATEWAY_SECRET_HEADER = "x-storeroom-gateway-secret";

/** Longest identity header value read, in bytes; longer values are refused before any parsing. */
export const MAX_GATEWAY_HEADER_BYTES = 1024;

/** Fewest bytes a gateway secret may have. */
export const MIN_GATEWAY_SECRET_BYTES = 32;

/** Longest role name, in bytes. */
export const MAX_ROLE_LENGTH = 64;

const rolePattern = /^[a-z0-9_-]+$/;

const storage = new AsyncLocalStorage<GatewayIdentity>();

/**
 * Removes the identity headers (and the gateway secret) in place, so a client talking to the
 * service directly cannot claim to be any tenant.
 */
export function stripGatewayHeaders(headers: IncomingHttpHeaders): void {
  for (const name of GATEWAY_IDENTITY_HEADERS) delete headers[name];
  delete headers[GATEWAY_SECRET_HEADER];
}

/**
 * Reads the identity headers strictly: an absent header is `undefined`, a present one must be
 * valid. `X-Org-Id` and `X-User-Id` must be tenant slugs (1-128 bytes of `[a-z0-9_-]`), each
 * `X-Roles` entry 1-64 bytes of `[a-z0-9_-]`, and `X-User-Id` needs `X-Org-Id`. A header that
 * is present but empty, repeated (Node joins repeats with `", "`, which no slug contains),
 * oversized or holding a control byte throws {@link InvalidKeyError}: it never counts as
 * absent, so a bad user id can never widen a request to the org's tenant.
 */
export function readGatewayIdentity(headers: IncomingHttpHeaders): GatewayIdentity {
  const orgId = slugHeader(headers, "x-org-id");
  const userId = slugHeader(headers, "x-user-id");
  if (userId !== undefined && orgId === undefined) {
    throw new InvalidKeyError("x-user-id needs x-org-id", { op: "tenants.identity" });
  }
  const rolesText = headerText(headers, "x-roles");
  const roles = rolesText === undefined ? [] : rolesText.split(",").map((role) => role.trim());
  for (const role of roles) {
    if (role === "" || Buffer.byteLength(role) > MAX_ROLE_LENGTH || !rolePattern.test(role)) {
      throw new InvalidKeyError(`x-roles entries must be 1-${MAX_ROLE_LENGTH} bytes of [a-z0-9_-]`, {
        op: "tenants.identity",
      });
    }
  }
  return Object.freeze({ orgId, userId, roles: Object.freeze([...new Set(roles)]) });
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

/**
 * How a service decides that a request came through the gateway. There is no default: trusting
 * every loopback peer would let a reverse proxy on the same host that forwards client headers
 * hand any identity to anyone.
 *
 * - `{ secret }`: the gateway sends the shared secret (>= 32 bytes) in
 *   `X-Storeroom-Gateway-Secret`; compared in constant time.
 * - a function: your own check (an mTLS peer certificate, a private socket...); return `true`
 *   only for requests the gateway made.
 */
export type GatewayTrust = { readonly secret: string } | ((request: GatewayRequest) => boolean);

/** Options of {@link requireGateway} and {@link gatewayTrustCheck}. */
export interface RequireGatewayOptions {
  /** Required: how to tell a request that came through the gateway (see {@link GatewayTrust}). */
  trust: GatewayTrust;
  /** `"user"` (default) requires `X-Org-Id` and `X-User-Id`; `"org"` requires only `X-Org-Id`. */
  scope?: TenantScope;
}

/**
 * Turns a {@link GatewayTrust} into a predicate, validating it once. A missing trust or a
 * secret shorter than {@link MIN_GATEWAY_SECRET_BYTES} -> {@link InvalidArgumentError}.
 */
export function gatewayTrustCheck(trust: GatewayTrust | undefined): (request: GatewayRequest) => boolean {
  if (typeof trust === "function") return trust;
  if (trust === null || typeof trust !== "object" || typeof trust.secret !== "string") {
    throw new InvalidArgumentError("trust must be { secret } or a function (no request is trusted implicitly)", {
      op: "tenants.gateway",
    });
  }
  if (Buffer.byteLength(trust.secret) < MIN_GATEWAY_SECRET_BYTES) {
    throw new InvalidArgumentError(`the gateway secret must be at least ${MIN_GATEWAY_SECRET_BYTES} bytes`, {
      op: "tenants.gateway",
    });
  }
  const expected = digest(trust.secret);
  return (request) => {
    const presented = request.headers[GATEWAY_SECRET_HEADER];
    return typeof presented === "string" && timingSafeEqual(digest(presented), expected);
  };
}

/**
 * Fail-closed guard for a service behind a gateway. Untrusted requests have their identity
 * headers stripped and get 401 `UNAUTHENTICATED`; a trusted request whose identity headers are
 * present but invalid gets 400 `INVALID_KEY`, and one without the identity the scope needs gets
 * 401. Otherwise `next` runs with the identity bound (see {@link currentGatewayIdentity}).
 * Returns what `next` returns, or `undefined` after answering an error.
 *
 * Build the options once: {@link gatewayTrustCheck} validates them on every call otherwise.
 *
 * @example
 * ```ts
 * const trust = { secret: process.env.GATEWAY_SECRET! };
 * // node:http
 * http.createServer((req, res) => requireGateway(req, res, () => handle(req, res), { trust }));
 * // Fastify
 * app.addHook("onRequest", (request, reply, done) => requireGateway(request.raw, reply.raw, done, { trust }));
 * // inside the handler
 * const db = await tenants.get(tenantKeyFromIdentity());
 * ```
 */
export function requireGateway<T>(
  request: GatewayRequest,
  response: GatewayResponse,
  next: () => T,
  options: RequireGatewayOptions,
): T | undefined {
  const trusted = gatewayTrustCheck(options?.trust);
  if (!trusted(request)) {
    stripGatewayHeaders(request.headers);
    return answer(response, 401, "UNAUTHENTICATED", "the request did not come through the gateway");
  }
  let identity: GatewayIdentity;
  try {
    identity = readGatewayIdentity(request.headers);
  } catch (err) {
    if (!isStoreError(err, "INVALID_KEY")) throw err;
    return answer(response, 400, "INVALID_KEY", err.message);
  }
  const scope = options.scope ?? "user";
  if (identity.orgId === undefined || (scope === "user" && identity.userId === undefined)) {
    return answer(response, 401, "UNAUTHENTICATED", `the gateway sent no identity for a ${scope} tenant`);
  }
  return storage.run(identity, next);
}

function answer(response: GatewayResponse, status: number, code: string, message: string): undefined {
  response.statusCode = status;
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({ error: { code, message } }));
  return undefined;
}

function headerText(headers: IncomingHttpHeaders, name: string): string | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  // Node joins repeated custom headers into one string; a string[] only comes from callers building headers by hand.
  if (typeof raw !== "string") throw new InvalidKeyError(`${name} must be sent once`, { op: "tenants.identity" });
  if (Buffer.byteLength(raw) > MAX_GATEWAY_HEADER_BYTES) {
    throw new InvalidKeyError(`${name} is longer than ${MAX_GATEWAY_HEADER_BYTES} bytes`, { op: "tenants.identity" });
  }
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw new InvalidKeyError(`${name} holds a control byte`, { op: "tenants.identity" });
  }
  const value = raw.trim();
  if (value === "") throw new InvalidKeyError(`${name} is empty`, { op: "tenants.identity" });
  return value;
}

function slugHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headerText(headers, name);
  if (value === undefined) return undefined;
  if (Buffer.byteLength(value) > MAX_SLUG_LENGTH || !/^[a-z0-9_-]+$/.test(value)) {
    throw new InvalidKeyError(`${name} must be 1-${MAX_SLUG_LENGTH} bytes of [a-z0-9_-]`, { op: "tenants.identity" });
  }
  return value;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
