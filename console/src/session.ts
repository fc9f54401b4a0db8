import type { Api } from "./api.js";

/** The caller as `GET /v1/whoami` reports it. */
export interface Identity {
  orgId: string;
  userId?: string;
  roles: string[];
}

/** The signed-in console: the API with the token, who it is, and the org being looked at. */
export interface Session {
  readonly api: Api;
  readonly identity: Identity;
  /** Role `admin` or `operator`. */
  readonly admin: boolean;
  /** Role `operator`: every org. */
  readonly operator: boolean;
  /** The org the pages show (an operator can switch). */
  org: string;
  /** The caller's own tenant id (`org/org` or `org/users/user`). */
  readonly ownTenant: string;
}

/** What a page gets: the session, its route parameters, and a signal aborted when it is left. */
export interface PageContext {
  readonly session: Session;
  readonly params: string[];
  readonly signal: AbortSignal;
  /** Runs `fn` every `ms` until the page is left. */
  every(ms: number, fn: () => void): void;
  /** Navigates to `#/...` (segments percent-encoded). */
  go(...segments: string[]): void;
}

/** `#/tenant/acme%2Fusers%2Fada/cart` from segments. */
export function href(...segments: string[]): string {
  return `#/${segments.map(encodeURIComponent).join("/")}`;
}
