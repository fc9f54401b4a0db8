import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { InvalidKeyError, UnauthenticatedError } from "../errors.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import { acceptIdentity } from "./identity-policy.js";

/**
 * HMAC-SHA256 (hex, keyed with the cluster's shared forwarding secret) over the forwarded
 * identity, the hop count and the signing time: the secret itself never travels.
 */
export const forwardSignatureHeader = "x-storeroom-forward-signature";
/** When the forwarding node signed the request, ms since the epoch. */
export const forwardedAtHeader = "x-storeroom-forwarded-at";
/** The identity the forwarding node authenticated, as base64url JSON `{orgId, userId?, roles}`. */
export const forwardedIdentityHeader = "x-storeroom-forwarded-identity";
/** How many nodes forwarded the request so far. */
export const forwardedHopsHeader = "x-storeroom-forwarded-hops";
/** The node that answered a request (set by every node of a cluster). */
export const servedByHeader = "x-storeroom-node";
/**
 * Set on the 503 `CLOSED` a shutting-down node answers: the request had no effect there, so the
 * node that forwarded it sends it again once the tenant's lease is released.
 */
export const closingHeader = "x-storeroom-closing";

/** Every header of the forwarding protocol, removed from what clients send before a request is forwarded. */
export const forwardingHeaders: readonly string[] = Object.freeze([
  forwardSignatureHeader,
  forwardedAtHeader,
  forwardedIdentityHeader,
  forwardedHopsHeader,
]);

/** A signature older (or further in the future) than this is refused: the clock skew between nodes plus transit, ms. */
export const FORWARD_SIGNATURE_WINDOW_MS = 60_000;

/** What a node adds to a request it forwards: the identity it authenticated (`null`: none), signed. */
export function signForwarding(
  secret: string,
  identity: RequestIdentity | null,
  hops: number,
  now: number,
): Record<string, string> {
  const encoded = identity === null ? "" : encodeForwardedIdentity(identity);
  const at = String(now);
  return {
    [forwardedIdentityHeader]: encoded,
    [forwardedHopsHeader]: String(hops),
    [forwardedAtHeader]: at,
    [forwardSignatureHeader]: forwardingMac(secret, encoded, String(hops), at),
  };
}

function forwardingMac(secret: string, identity: string, hops: string, at: string): string {
  return createHmac("sha256", secret).update(`storeroom-forward\n${identity}\n${hops}\n${at}`).digest("hex");
}

/** Encodes an identity for {@link forwardedIdentityHeader}. */
export function encodeForwardedIdentity(identity: RequestIdentity): string {
  return Buffer.from(JSON.stringify(identity)).toString("base64url");
}

/**
 * Accepts requests forwarded by another node of the cluster: when their signature checks out
 * (HMAC with the shared forwarding secret, compared in constant time, signed within
 * {@link FORWARD_SIGNATURE_WINDOW_MS}), the identity the forwarding node authenticated is the
 * request's identity, exactly as signed (checked again by the identity policy, never widened:
 * the client's own credentials travel along but are not read again). A request carrying any
 * header of the forwarding protocol without a valid signature is refused with 401, never read
 * as a client's own; everything else goes to the node's own authenticator.
 */
export class ForwardingAuthenticator implements Authenticator {
  readonly #inner: Authenticator;
  readonly #secret: string;
  readonly #now: () => number;

  constructor(inner: Authenticator, secret: string, now: () => number) {
    this.#inner = inner;
    this.#secret = secret;
    this.#now = now;
  }

  get mode(): "token" | "gateway" {
    return this.#inner.mode;
  }

  identify(headers: IncomingHttpHeaders): RequestIdentity | null {
    if (!forwardingHeaders.some((h) => headers[h] !== undefined)) return this.#inner.identify(headers);
    if (!this.isForwarded(headers)) {
      throw new UnauthenticatedError("a forwarded request without a valid signature of the cluster", {
        op: "server.forward",
      });
    }
    const encoded = headers[forwardedIdentityHeader] as string;
    if (encoded === "") return null;
    let parsed: { orgId?: unknown; userId?: unknown; roles?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
    } catch {
      throw badIdentity();
    }
    if (
      typeof parsed.orgId !== "string" ||
      (parsed.userId !== undefined && typeof parsed.userId !== "string") ||
      !Array.isArray(parsed.roles) ||
      !parsed.roles.every((r) => typeof r === "string")
    ) {
      throw badIdentity();
    }
    // The forwarding node already applied its own rules (which may grant operator).
    return acceptIdentity(
      { orgId: parsed.orgId, ...(parsed.userId === undefined ? {} : { userId: parsed.userId }), roles: parsed.roles },
      { operatorRole: true },
    );
  }

  /** True when the headers carry a forwarding signature of this cluster that is valid now. */
  isForwarded(headers: IncomingHttpHeaders): boolean {
    const [identity, hops, at, signature] = [
      headers[forwardedIdentityHeader],
      headers[forwardedHopsHeader],
      headers[forwardedAtHeader],
      headers[forwardSignatureHeader],
    ];
    if (typeof identity !== "string" || typeof hops !== "string" || typeof at !== "string") return false;
    if (typeof signature !== "string" || !/^\d{1,16}$/.test(at)) return false;
    if (Math.abs(this.#now() - Number(at)) > FORWARD_SIGNATURE_WINDOW_MS) return false;
    const expected = Buffer.from(forwardingMac(this.#secret, identity, hops, at));
    const presented = Buffer.from(signature);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  }
}

/** Hops already taken by a request (0 for one straight from a client). */
export function forwardedHops(headers: IncomingHttpHeaders): number {
  const raw = headers[forwardedHopsHeader];
  return typeof raw === "string" && /^\d{1,2}$/.test(raw) ? Number(raw) : 0;
}

function badIdentity(): InvalidKeyError {
  return new InvalidKeyError("malformed forwarded identity", { op: "server.forward" });
}
