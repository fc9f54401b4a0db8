import type { IncomingHttpHeaders } from "node:http";
import { UnauthenticatedError } from "../errors.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import type { TokenStore } from "./token-store.js";

/**
 * Token mode: `Authorization: Bearer <token>` (the scheme in any case) looked up in a
 * {@link TokenStore}. No header is anonymous; a header of another scheme (`Basic ...`, a bare
 * token) is refused (401) with a message asking for a Bearer token, and a bearer token that is
 * not known and unexpired is refused (401) as unknown or expired.
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
    // The scheme is case-insensitive; anything else (Basic, a bare token) is not a bearer token at all.
    const bearer = typeof value === "string" ? /^bearer +(\S+) *$/i.exec(value) : null;
    if (bearer === null) {
      throw new UnauthenticatedError("a Bearer token is required: send Authorization: Bearer <token>", {
        op: "server.tokens",
      });
    }
    const found = this.store.identify(bearer[1] as string);
    if (found === undefined) throw new UnauthenticatedError("unknown or expired bearer token", { op: "server.tokens" });
    return Object.freeze({
      orgId: found.orgId,
      ...(found.userId === undefined ? {} : { userId: found.userId }),
      roles: found.roles,
    });
  }
}
