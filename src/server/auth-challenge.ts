import type { Authenticator } from "./identity.js";

/**
 * The `WWW-Authenticate` value of a 401 answer. Token mode challenges for a bearer token
 * (`Bearer realm="storeroom"`, with `error="invalid_token"` when the request presented
 * credentials that were refused). Gateway mode has no scheme a client could answer (the gateway
 * proves itself with a shared secret), so it sends no challenge: `undefined`.
 */
export function authChallenge(mode: Authenticator["mode"], presentedCredentials: boolean): string | undefined {
  if (mode !== "token") return undefined;
  return presentedCredentials ? 'Bearer realm="storeroom", error="invalid_token"' : 'Bearer realm="storeroom"';
}
