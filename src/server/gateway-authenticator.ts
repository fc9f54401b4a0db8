import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { InvalidArgumentError } from "../errors.js";
import type { Authenticator, RequestIdentity } from "./identity.js";

/** Header carrying the shared secret that proves a request came through the gateway. */
export const gatewaySecretHeader = "x-storeroom-gateway-secret";

const identityHeaders = ["x-org-id", "x-user-id", "x-roles"] as const;
const maxHeaderBytes = 256;

/**
 * Gateway mode: `X-Org-Id`, `X-User-Id`, `X-Roles` are trusted only when the request also
 * carries the shared secret in `X-Storeroom-Gateway-Secret`; otherwise they are stripped.
 */
export class GatewayAuthenticator implements Authenticator {
  readonly mode = "gateway" as const;
  readonly #secretDigest: Buffer;

  /** `secret` must be at least 32 bytes; shorter -> InvalidArgumentError. */
  constructor(secret: string) {
    if (Buffer.byteLength(secret) < 32) {
      throw new InvalidArgumentError("gateway secret must be at least 32 bytes", { op: "server.gateway" });
    }
    this.#secretDigest = digest(secret);
  }

  identify(headers: IncomingHttpHeaders): RequestIdentity | null {
    const presented = headers[gatewaySecretHeader];
    const trusted = typeof presented === "string" && timingSafeEqual(digest(presented), this.#secretDigest);
    if (!trusted) {
      stripIdentityHeaders(headers);
      return null;
    }
    const orgId = headerValue(headers, "x-org-id");
    if (orgId === undefined) return null;
    const userId = headerValue(headers, "x-user-id");
    const roles = (headerValue(headers, "x-roles") ?? "")
      .split(",")
      .map((r) => r.trim())
      .filter((r) => r !== "");
    return Object.freeze({ orgId, ...(userId ? { userId } : {}), roles: Object.freeze(roles) });
  }
}

/** Removes the identity headers (and the secret) so nothing downstream can read forged values. */
export function stripIdentityHeaders(headers: IncomingHttpHeaders): void {
  for (const name of identityHeaders) delete headers[name];
  delete headers[gatewaySecretHeader];
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (typeof v !== "string" || v === "" || Buffer.byteLength(v) > maxHeaderBytes || hasControlByte(v)) return undefined;
  return v;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

// Any C0 control byte or DEL makes a header value count as absent.
function hasControlByte(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
