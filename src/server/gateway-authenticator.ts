import type { IncomingHttpHeaders } from "node:http";
import { InvalidKeyError, UnauthenticatedError } from "../errors.js";
import {
  GATEWAY_SECRET_HEADER,
  type GatewayRequest,
  gatewayTrustCheck,
  readGatewayIdentity,
  stripGatewayHeaders,
} from "../tenants/index.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import { acceptIdentity } from "./identity-policy.js";

/** Header carrying the shared secret that proves a request came through the gateway. */
export const gatewaySecretHeader = GATEWAY_SECRET_HEADER;

/** Options of {@link GatewayAuthenticator}. */
export interface GatewayAuthenticatorOptions {
  /** Shared secret (>= 32 bytes) the gateway sends in `X-Storeroom-Gateway-Secret`. */
  secret: string;
  /** Accept `operator` in `X-Roles` (every org). Default false: such a request gets 403. */
  operatorRole?: boolean;
}

/**
 * Gateway mode: `X-Org-Id`, `X-User-Id`, `X-Roles` are trusted only when the request also
 * carries the shared secret; without it they are stripped and the request is anonymous, with a
 * wrong secret it is refused (401). Trusted headers are read strictly (the tenants module's
 * {@link readGatewayIdentity}) and then go through the server's identity policy.
 */
export class GatewayAuthenticator implements Authenticator {
  readonly mode = "gateway" as const;
  readonly #trusted: (request: GatewayRequest) => boolean;
  readonly #operatorRole: boolean;

  /** A secret shorter than 32 bytes -> InvalidArgumentError. */
  constructor(options: GatewayAuthenticatorOptions) {
    this.#trusted = gatewayTrustCheck({ secret: options.secret });
    this.#operatorRole = options.operatorRole === true;
  }

  identify(headers: IncomingHttpHeaders): RequestIdentity | null {
    const presented = headers[gatewaySecretHeader] !== undefined;
    const trusted = presented && this.#trusted({ headers });
    if (!trusted) {
      stripGatewayHeaders(headers);
      if (presented) throw new UnauthenticatedError("wrong gateway secret", { op: "server.gateway" });
      return null;
    }
    let stated: ReturnType<typeof readGatewayIdentity>;
    try {
      stated = readGatewayIdentity(headers);
    } finally {
      stripGatewayHeaders(headers);
    }
    const { orgId, userId, roles } = stated;
    if (orgId === undefined) {
      if (roles.length > 0) throw new InvalidKeyError("x-roles needs x-org-id", { op: "server.gateway" });
      return null;
    }
    return acceptIdentity({ orgId, userId, roles }, { operatorRole: this.#operatorRole });
  }
}

/** Removes the identity headers (and the secret) so nothing downstream can read forged values. */
export function stripIdentityHeaders(headers: IncomingHttpHeaders): void {
  stripGatewayHeaders(headers);
}
