import { createHmac, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../../errors.js";
import { canonicalEnvelope, type Envelope } from "./envelope.js";

/** Shortest accepted HMAC secret: 32 bytes, the SHA-256 output size (as peerbus). */
export const MIN_HMAC_SECRET_BYTES = 32;

/** A shared secret as bytes or a UTF-8 string. */
export type HmacSecret = Uint8Array | string;

/** The secret as bytes; throws {@link InvalidArgumentError} when it is shorter than 32 bytes. */
export function hmacKey(secret: HmacSecret): Buffer {
  const key = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (key.length < MIN_HMAC_SECRET_BYTES) {
    throw new InvalidArgumentError(`the HMAC secret must be at least ${MIN_HMAC_SECRET_BYTES} bytes`);
  }
  return key;
}

/** Lowercase hex HMAC-SHA256 of the canonical form. */
export function envelopeHmac(env: Omit<Envelope, "hmac">, secret: HmacSecret): string {
  return createHmac("sha256", hmacKey(secret)).update(canonicalEnvelope(env), "utf8").digest("hex");
}

/** Returns `env` with `hmac` set. */
export function signEnvelope(env: Omit<Envelope, "hmac">, secret: HmacSecret): Envelope {
  return { ...env, hmac: envelopeHmac(env, secret) };
}

/**
 * True when `env.hmac` is the HMAC of its canonical form under `secret` (constant-time
 * compare); false for a mismatch, a missing or non-hex MAC. Throws only for a short secret.
 */
export function verifyEnvelope(env: Envelope, secret: HmacSecret): boolean {
  const want = envelopeHmac(env, secret);
  if (!/^[0-9a-fA-F]{64}$/.test(env.hmac)) return false;
  return timingSafeEqual(Buffer.from(want, "hex"), Buffer.from(env.hmac, "hex"));
}
