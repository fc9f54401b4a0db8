import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import { dirname } from "node:path";
import { InvalidArgumentError, UnauthenticatedError } from "../errors.js";
import type { Authenticator, RequestIdentity } from "./identity.js";

/** One entry of the tokens file (`<dataDir>/tokens.json`). */
export interface TokenEntry {
  /** The bearer token (at least 16 characters). */
  token: string;
  orgId: string;
  userId?: string;
  roles?: string[];
}

/** What {@link TokenAuthenticator.open} did with the tokens file. */
export interface TokenFileState {
  path: string;
  /** The token generated now (first start with no file), printed once by `storeroom serve`. */
  generated?: TokenEntry;
  /** How many tokens the file holds. */
  count: number;
}

const slug = /^[a-z0-9_-]{1,128}$/;

/** Bearer tokens mapped to org/user, loaded from a JSON file `{ "tokens": [TokenEntry, ...] }`. */
export class TokenAuthenticator implements Authenticator {
  readonly mode = "token" as const;
  readonly file: TokenFileState;
  // Keyed by SHA-256 of the token so a lookup does not compare secrets byte by byte.
  readonly #byHash: Map<string, RequestIdentity>;

  private constructor(entries: readonly TokenEntry[], file: TokenFileState) {
    this.file = file;
    this.#byHash = new Map(entries.map((e) => [hashToken(e.token), toIdentity(e)]));
  }

  /**
   * Loads the tokens file; when it does not exist, writes one with a fresh admin token for org
   * `default` (mode 0600) and reports it as `generated`. A malformed file -> InvalidArgumentError.
   */
  static async open(path: string): Promise<TokenAuthenticator> {
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text === undefined) {
      const generated: TokenEntry = {
        token: randomBytes(24).toString("base64url"),
        orgId: "default",
        roles: ["admin"],
      };
      await mkdir(dirname(path), { recursive: true });
      try {
        await writeFile(path, `${JSON.stringify({ tokens: [generated] }, null, 2)}\n`, { mode: 0o600, flag: "wx" });
      } catch (err) {
        // Another process created it first: use its tokens.
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return TokenAuthenticator.open(path);
        throw err;
      }
      return new TokenAuthenticator([generated], { path, generated, count: 1 });
    }
    const entries = parseTokens(text, path);
    return new TokenAuthenticator(entries, { path, count: entries.length });
  }

  /** Builds an authenticator from entries in memory (tests, embedding). */
  static fromEntries(entries: readonly TokenEntry[]): TokenAuthenticator {
    for (const e of entries) validateEntry(e, "tokens");
    return new TokenAuthenticator(entries, { path: "", count: entries.length });
  }

  identify(headers: IncomingHttpHeaders): RequestIdentity | null {
    const value = headers.authorization;
    if (value === undefined) return null;
    const token = typeof value === "string" && value.startsWith("Bearer ") ? value.slice(7).trim() : "";
    const identity = token === "" ? undefined : this.#byHash.get(hashToken(token));
    if (identity === undefined) throw new UnauthenticatedError("unknown bearer token", { op: "server.tokens" });
    return identity;
  }
}

function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function toIdentity(e: TokenEntry): RequestIdentity {
  return Object.freeze({
    orgId: e.orgId,
    ...(e.userId ? { userId: e.userId } : {}),
    roles: Object.freeze([...(e.roles ?? [])]),
  });
}

function parseTokens(text: string, path: string): TokenEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`tokens file ${path} is not JSON`, { op: "server.tokens", cause: err });
  }
  const tokens = (parsed as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens))
    throw new InvalidArgumentError(`tokens file ${path} needs a "tokens" array`, { op: "server.tokens" });
  for (const e of tokens) validateEntry(e as TokenEntry, path);
  return tokens as TokenEntry[];
}

function validateEntry(e: TokenEntry, where: string): void {
  const ok =
    typeof e === "object" &&
    e !== null &&
    typeof e.token === "string" &&
    e.token.length >= 16 &&
    typeof e.orgId === "string" &&
    slug.test(e.orgId) &&
    (e.userId === undefined || (typeof e.userId === "string" && slug.test(e.userId))) &&
    (e.roles === undefined || (Array.isArray(e.roles) && e.roles.every((r) => typeof r === "string")));
  if (!ok) {
    throw new InvalidArgumentError(
      `${where}: each token needs "token" (>= 16 chars), "orgId" and optional "userId" (slugs [a-z0-9_-]), "roles" (strings)`,
      { op: "server.tokens" },
    );
  }
}
