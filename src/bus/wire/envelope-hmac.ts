import { timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../../errors.js";
import { canonicalEnvelope, canonicalEnvelopeWith, checkBody, checkDeliverable, type Envelope } from "./envelope.js";
import { goJsonString } from "./go-json.js";
import { hmacSha256 } from "./hmac-sha256.js";
import { wireBytes } from "./wire-text.js";

/** Shortest accepted HMAC secret: 32 bytes, the SHA-256 output size (as peerbus). */
export const MIN_HMAC_SECRET_BYTES = 32;

/** A shared secret as bytes or a UTF-8 string. */
export type HmacSecret = Uint8Array | string;

/**
 * How an envelope's HMAC checks out:
 * - `valid`: it verifies (also when signed by a Go build older than 1.22, which escaped
 *   U+0008 and U+000C in string fields as `\u0008` / `\u000c`);
 * - `invalid`: it does not;
 * - `unverifiable`: it was signed over a string field holding bytes that are not UTF-8 (Go
 *   writes each as `\ufffd`, a JavaScript signer wrote a lone surrogate so), which every
 *   receiver decodes to U+FFFD and so can never reproduce; refused as a sender error.
 */
export type HmacCheck = "valid" | "invalid" | "unverifiable";

const STRING_FIELDS = ["protocol_version", "id", "from", "to", "ts", "source", "kind"] as const;

/**
 * The `hmacSecret` option as bytes; anything but a string or bytes of at least 32 bytes throws
 * {@link InvalidArgumentError} naming `hmacSecret`.
 */
export function hmacSecretOption(secret: unknown, op: string): Buffer {
  if (typeof secret !== "string" && !(secret instanceof Uint8Array)) {
    throw new InvalidArgumentError(`hmacSecret must be a string or bytes of at least ${MIN_HMAC_SECRET_BYTES} bytes`, {
      op,
    });
  }
  const key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (key.length < MIN_HMAC_SECRET_BYTES) {
    throw new InvalidArgumentError(`hmacSecret must be at least ${MIN_HMAC_SECRET_BYTES} bytes, got ${key.length}`, {
      op,
    });
  }
  return key;
}

/** The secret as bytes; throws {@link InvalidArgumentError} when it is shorter than 32 bytes. */
export function hmacKey(secret: HmacSecret): Buffer {
  const key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (key.length < MIN_HMAC_SECRET_BYTES) {
    throw new InvalidArgumentError(`the HMAC secret must be at least ${MIN_HMAC_SECRET_BYTES} bytes`);
  }
  return key;
}

/** The exact bytes the HMAC covers: {@link canonicalEnvelope}, with raw body bytes restored. */
export function canonicalBytes(env: Omit<Envelope, "hmac">): Buffer {
  return wireBytes(canonicalEnvelope(env));
}

/** Lowercase hex HMAC-SHA256 of the canonical bytes. */
export function envelopeHmac(env: Omit<Envelope, "hmac">, secret: HmacSecret): string {
  return macOf(canonicalEnvelope(env), hmacKey(secret)).toString("hex");
}

/**
 * Returns `env` with `hmac` set. Throws {@link InvalidArgumentError} when a string field is
 * not well-formed Unicode (a lone surrogate: no receiver could verify it) or when `body` is not
 * one valid JSON value (Go refuses to encode it).
 */
export function signEnvelope(env: Omit<Envelope, "hmac">, secret: HmacSecret): Envelope {
  checkBody(env.body);
  return { ...env, hmac: sealEnvelope(env, hmacKey(secret)).hmac };
}

/**
 * Signs an envelope whose body is known to be JSON (from `JSON.stringify`) and returns its HMAC
 * and the frame carrying it, building the canonical text once. Checks the fields as
 * {@link signEnvelope} does, and the body's nesting only when it is long enough to matter.
 */
export function sealEnvelope(env: Omit<Envelope, "hmac">, key: Buffer): { hmac: string; frame: string } {
  for (const f of STRING_FIELDS) {
    if (typeof env[f] !== "string") throw new InvalidArgumentError(`envelope field "${f}" must be a string`);
    if (!env[f].isWellFormed()) {
      throw new InvalidArgumentError(`envelope field "${f}" holds a lone surrogate: no receiver could verify it`);
    }
  }
  checkDeliverable(env);
  const canonical = canonicalEnvelope(env);
  const hmac = macOf(canonical, key).toString("hex");
  return { hmac, frame: `${canonical.slice(0, -1)},"hmac":"${hmac}"}` };
}

/**
 * True when `env.hmac` is the HMAC of its canonical bytes under `secret` (constant-time
 * compare, hex in either case); false for a mismatch or a missing or non-hex MAC. Throws only
 * for a short secret. See {@link checkEnvelopeHmac} for why a check failed.
 */
export function verifyEnvelope(env: Envelope, secret: HmacSecret): boolean {
  return checkEnvelopeHmac(env, secret) === "valid";
}

/**
 * Verifies like {@link verifyEnvelope} and tells an invalid MAC from an unverifiable one
 * ({@link HmacCheck}). A caller that built the canonical text already (to store it) passes it,
 * and a key from {@link hmacKey}.
 */
export function checkEnvelopeHmac(
  env: Envelope,
  secret: HmacSecret | Buffer,
  canonical: string = canonicalEnvelope(env),
): HmacCheck {
  const key = Buffer.isBuffer(secret) ? secret : hmacKey(secret);
  if (!/^[0-9a-fA-F]{64}$/.test(env.hmac)) return "invalid";
  const given = Buffer.from(env.hmac, "hex");
  const matches = (text: string) => timingSafeEqual(macOf(text, key), given);
  if (matches(canonical)) return "valid";
  const fields = STRING_FIELDS.map((f) => env[f]).join("");
  if (/[\b\f]/.test(fields) && matches(canonicalEnvelopeWith(env, go119String))) return "valid";
  if (
    fields.includes("\ufffd") &&
    matches(canonicalEnvelopeWith(env, (s) => goJsonString(s).replace(/\ufffd/g, "\\ufffd")))
  ) {
    return "unverifiable";
  }
  return "invalid";
}

function macOf(canonical: string, key: Buffer): Buffer {
  return hmacSha256(key, canonical.isWellFormed() ? canonical : wireBytes(canonical));
}

/** A string as Go before 1.22 wrote it: U+0008 and U+000C as `\u0008` / `\u000c` instead of `\b` / `\f`. */
function go119String(value: string): string {
  return goJsonString(value).replace(/\\([\s\S])/g, (m, c: string) =>
    c === "b" ? "\\u0008" : c === "f" ? "\\u000c" : m,
  );
}
