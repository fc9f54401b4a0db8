import type { IncomingHttpHeaders } from "node:http";
import { UnauthenticatedError } from "../errors.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import type { TokenStore } from "./token-store.js";

/**
 * Token mode: `Authorization: Bearer <token>` looked up in a {@link TokenStore}. No header is
 * anonymous; a header that is not a known, unexpired bearer token is refused (401).
 */
export class TokenAuthenticator implements Authenticator {
  readonly mode = "token" as const;
  /** The store the tokens come from (the server's token routes and `storeroom tokens` manage it). */
  readonly store: TokenStore;

  constructor(store: TokenStore) {
    this.store = store;
  }

  identify(headers: IncomingHttpHeaders): RequestIdentity | null {
    const value = headers.authorization;
    if (value === undefined) return null;
    const token = typeof value === "string" && value.startsWith("Bearer ") ? value.slice(7).trim() : "";
    const found = token === "" ? undefined : this.store.identify(token);
    if (found === undefined) throw new UnauthenticatedError("unknown or expired bearer token", { op: "server.tokens" });
    return Object.freeze({
      orgId: found.orgId,
      ...(found.userId === undefined ? {} : { userId: found.userId }),
      roles: found.roles,
    });
  }
}
