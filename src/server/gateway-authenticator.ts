import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { InvalidArgumentError } from "../errors.js";
import { readGatewayIdentity, stripGatewayHeaders } from "../tenants/index.js";
import type { Authenticator, RequestIdentity } from "./identity.js";

/** Header carrying the shared secret that proves a request came through the gateway. */
export const gatewaySecretHeader = "x-storeroom-gateway-secret";

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
    const { orgId, userId, roles } = readGatewayIdentity(headers);
    if (orgId === undefined) return null;
    return Object.freeze({ orgId, ...(userId === undefined ? {} : { userId }), roles });
  }
}

/** Removes the identity headers (and the secret) so nothing downstream can read forged values. */
export function stripIdentityHeaders(headers: IncomingHttpHeaders): void {
  stripGatewayHeaders(headers);
  delete headers[gatewaySecretHeader];
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
