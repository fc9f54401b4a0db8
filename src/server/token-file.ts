import { createHash, randomBytes } from "node:crypto";
import { InvalidArgumentError, isStoreError } from "../errors.js";
import { acceptIdentity } from "./identity-policy.js";

/** One token as the token store keeps it: never the secret, only its SHA-256. */
export interface TokenRecord {
  /** Stable id used by `tokens revoke` and `DELETE /v1/tokens/:id` (12 hex characters). */
  readonly id: string;
  readonly orgId: string;
  /** The user the token acts as; absent for an org-wide token. */
  readonly userId?: string;
  readonly roles: readonly string[];
  /** ISO timestamp of creation (or of migration, for a token that was stored in clear). */
  readonly createdAt: string;
  /** ISO timestamp after which the token answers 401; absent when it never expires. */
  readonly expiresAt?: string;
  /** Free text shown by `tokens ls` (who or what the token is for). */
  readonly label?: string;
}

/** A {@link TokenRecord} with the digest that identifies its secret, as stored in the file. */
export interface StoredToken extends TokenRecord {
  /** Hex SHA-256 of the bearer token. */
  readonly sha256: string;
}

/** What {@link parseTokenFile} found: the tokens, and how many were stored in clear and are now hashed. */
export interface ParsedTokenFile {
  readonly tokens: readonly StoredToken[];
  /** Entries that carried a clear `token`; the caller rewrites the file without them. */
  readonly migrated: number;
}

/** Shortest bearer token accepted in a tokens file (clear-text entries). */
export const MIN_TOKEN_LENGTH = 16;

const idPattern = /^[a-z0-9]{8,32}$/;
const digestPattern = /^[0-9a-f]{64}$/;
const storedKeys = new Set(["id", "sha256", "token", "orgId", "userId", "roles", "createdAt", "expiresAt", "label"]);

/** Hex SHA-256 of a bearer token: what the file stores and what a lookup computes. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * A fresh token id and bearer token `sr_<id>_<32 random bytes, base64url>`. The id in the token
 * lets a lookup find the entry without touching the secret, then compare digests in constant time.
 */
export function newToken(): { token: string; id: string } {
  const id = newTokenId();
  return { token: `sr_${id}_${randomBytes(32).toString("base64url")}`, id };
}

/** The id embedded in a token made by {@link newToken}, or undefined for any other token. */
export function tokenIdOf(token: string): string | undefined {
  return /^sr_([0-9a-f]{12})_/.exec(token)?.[1];
}

/** A fresh token id (12 hex characters). */
export function newTokenId(): string {
  return randomBytes(6).toString("hex");
}

/**
 * Parses a tokens file: `{"version": 2, "tokens": [StoredToken...]}`, or the older clear-text
 * form `{"tokens": [{"token", "orgId", "userId"?, "roles"?}]}` (also mixed). Clear entries are
 * hashed here (`now` becomes their `createdAt`). Every entry is checked against the server's
 * identity policy. A malformed file, an unknown field, or a token, digest or id that appears
 * twice -> InvalidArgumentError naming the file and the entry's line (and the earlier line for
 * a duplicate). Nothing is ever skipped or merged.
 */
export function parseTokenFile(text: string, path: string, now: number): ParsedTokenFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    const where = position === undefined ? "" : ` line ${lineAt(text, Number(position))}`;
    throw new InvalidArgumentError(`tokens file ${path}${where}: not valid JSON`, { op: "server.tokens", cause: err });
  }
  const entries = (parsed as { tokens?: unknown } | null)?.tokens;
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !Array.isArray(entries)) {
    throw new InvalidArgumentError(`tokens file ${path}: needs {"tokens": [...]}`, { op: "server.tokens" });
  }
  const lines = tokenEntryLines(text);
  const tokens: StoredToken[] = [];
  const seenDigest = new Map<string, number>();
  const seenId = new Map<string, number>();
  let migrated = 0;
  for (const [i, entry] of entries.entries()) {
    const line = lines[i] ?? 0;
    const fail = (what: string): never => {
      throw new InvalidArgumentError(`tokens file ${path} line ${line}: ${what}`, { op: "server.tokens" });
    };
    const stored = toStored(entry, now, fail);
    if ("token" in (entry as object)) migrated++;
    const sameDigest = seenDigest.get(stored.sha256);
    if (sameDigest !== undefined) fail(`the same token as line ${sameDigest} (each token must appear once)`);
    const sameId = seenId.get(stored.id);
    if (sameId !== undefined) fail(`the same id "${stored.id}" as line ${sameId}`);
    seenDigest.set(stored.sha256, line);
    seenId.set(stored.id, line);
    tokens.push(stored);
  }
  return { tokens, migrated };
}

/** The file text for `tokens`: version 2, digests only, one entry per line group, trailing newline. */
export function serializeTokenFile(tokens: readonly StoredToken[]): string {
  return `${JSON.stringify({ version: 2, tokens }, null, 2)}\n`;
}

/** The record without its digest (what listings show). */
export function publicRecord(stored: StoredToken): TokenRecord {
  const { sha256: _digest, ...record } = stored;
  return record;
}

/**
 * One new entry, checked by the same rules as a file's entries and returned as stored. No file
 * is named in the errors (nothing was read or written): an org, user or role the identity
 * policy refuses -> its own error (`InvalidKeyError` for a malformed or reserved id), any other
 * bad field -> `InvalidArgumentError` naming the field.
 */
export function newStoredToken(entry: Record<string, unknown>, now: number): StoredToken {
  const fail = (what: string): never => {
    throw new InvalidArgumentError(what, { op: "server.tokens" });
  };
  return toStored(entry, now, fail, { identityErrors: "rethrow" });
}

function toStored(
  entry: unknown,
  now: number,
  fail: (what: string) => never,
  { identityErrors }: { identityErrors: "fail" | "rethrow" } = { identityErrors: "fail" },
): StoredToken {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return fail("an entry must be an object");
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) if (!storedKeys.has(key)) fail(`unknown field "${key}"`);
  let sha256: string;
  if (e.token !== undefined) {
    if (e.sha256 !== undefined) fail('give either "token" or "sha256", not both');
    if (typeof e.token !== "string" || e.token.length < MIN_TOKEN_LENGTH) {
      fail(`"token" must be a string of at least ${MIN_TOKEN_LENGTH} characters`);
    }
    sha256 = tokenDigest(e.token as string);
  } else {
    if (typeof e.sha256 !== "string" || !digestPattern.test(e.sha256)) fail('"sha256" must be 64 hex digits');
    sha256 = e.sha256 as string;
  }
  const id = e.id === undefined && e.token !== undefined ? newTokenId() : e.id;
  if (typeof id !== "string" || !idPattern.test(id)) fail('"id" must be 8-32 characters of [a-z0-9]');
  if (typeof e.orgId !== "string") fail('"orgId" must be a string');
  if (e.userId !== undefined && typeof e.userId !== "string") fail('"userId" must be a string');
  const roles = e.roles ?? [];
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string" && /^[a-z0-9_-]{1,64}$/.test(r))) {
    fail('"roles" must be an array of role names ([a-z0-9_-], up to 64 bytes)');
  }
  try {
    acceptIdentity(
      { orgId: e.orgId as string, userId: e.userId as string | undefined, roles: roles as string[] },
      { operatorRole: true },
    );
  } catch (err) {
    if (isStoreError(err) && identityErrors === "fail") fail(err.message);
    throw err;
  }
  const createdAt = e.createdAt === undefined ? new Date(now).toISOString() : e.createdAt;
  if (typeof createdAt !== "string" || Number.isNaN(Date.parse(createdAt))) fail('"createdAt" must be an ISO time');
  if (e.expiresAt !== undefined && (typeof e.expiresAt !== "string" || Number.isNaN(Date.parse(e.expiresAt)))) {
    fail('"expiresAt" must be an ISO time');
  }
  if (e.label !== undefined && (typeof e.label !== "string" || e.label.length > 200)) {
    fail('"label" must be a string of up to 200 characters');
  }
  return Object.freeze({
    id: id as string,
    sha256,
    orgId: e.orgId as string,
    ...(e.userId === undefined ? {} : { userId: e.userId as string }),
    roles: Object.freeze([...new Set(roles as string[])]),
    createdAt: createdAt as string,
    ...(e.expiresAt === undefined ? {} : { expiresAt: e.expiresAt as string }),
    ...(e.label === undefined ? {} : { label: e.label as string }),
  });
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * The 1-based line on which each element of the top-level `"tokens"` array starts. Runs on
 * text `JSON.parse` already accepted, so it only tracks strings, nesting and commas.
 */
function tokenEntryLines(text: string): number[] {
  const lines: number[] = [];
  const stack: string[] = [];
  let line = 1;
  let lastString: string | undefined;
  let key: string | undefined;
  let inTokens = false;
  let expectEntry = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\n") {
      line++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") continue;
    const inArray = inTokens && stack.length === 2;
    if (inArray && expectEntry && c !== "]") {
      lines.push(line);
      expectEntry = false;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      lastString = text.slice(i + 1, j);
      i = j;
    } else if (c === ":" && stack.length === 1) {
      key = lastString;
    } else if (c === "{" || c === "[") {
      stack.push(c);
      if (c === "[" && stack.length === 2 && key === "tokens") {
        inTokens = true;
        expectEntry = true;
      }
    } else if (c === "}" || c === "]") {
      stack.pop();
      if (stack.length < 2) inTokens = false;
    } else if (c === "," && inArray) {
      expectEntry = true;
    }
  }
  return lines;
}
