import * as crypto from "node:crypto";

/** SHA-256's block size: HMAC pads its key to it. */
const BLOCK = 64;
const DIGEST = 32;
/** Texts up to this many UTF-16 units fit the scratch buffer in UTF-8 (3 bytes per unit at most). */
const SCRATCH_UNITS = 21_000;

interface Pads {
  /** Key XOR ipad, followed by room for the message. */
  readonly inner: Buffer;
  /** Key XOR opad, followed by room for the inner digest. */
  readonly outer: Buffer;
}

const padsOf = new WeakMap<Buffer, Pads>();

// One-shot hashing (Node.js 20.12+) creates no Hmac object per call: cheaper to call and to collect.
const oneShot = (crypto as { hash?: typeof crypto.hash }).hash;

/**
 * HMAC-SHA256 of `message` (a string as UTF-8) under `key`: RFC 2104 built from
 * two one-shot SHA-256 calls over pads prepared once per key, the message written into a reused
 * buffer, so a call allocates only its digests. Falls back to `createHmac` where one-shot hashing
 * is missing and for long messages.
 */
export function hmacSha256(key: Buffer, message: string | Uint8Array): Buffer {
  if (oneShot === undefined || message.length > SCRATCH_UNITS) {
    const mac = crypto.createHmac("sha256", key);
    if (typeof message === "string") mac.update(message, "utf8");
    else mac.update(message);
    return mac.digest();
  }
  const pads = padsFor(key);
  let end: number;
  if (typeof message === "string") end = BLOCK + pads.inner.write(message, BLOCK, "utf8");
  else {
    pads.inner.set(message, BLOCK);
    end = BLOCK + message.length;
  }
  const innerDigest = oneShot("sha256", pads.inner.subarray(0, end), "buffer");
  pads.outer.set(innerDigest, BLOCK);
  return oneShot("sha256", pads.outer, "buffer");
}

function padsFor(key: Buffer): Pads {
  const known = padsOf.get(key);
  if (known !== undefined) return known;
  const block = Buffer.alloc(BLOCK);
  (key.length > BLOCK ? crypto.createHash("sha256").update(key).digest() : key).copy(block);
  const inner = Buffer.alloc(BLOCK + 3 * SCRATCH_UNITS);
  const outer = Buffer.alloc(BLOCK + DIGEST);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = (block[i] as number) ^ 0x36;
    outer[i] = (block[i] as number) ^ 0x5c;
  }
  const pads = { inner, outer };
  padsOf.set(key, pads);
  return pads;
}
