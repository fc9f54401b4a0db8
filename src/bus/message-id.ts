import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_BYTES = 10;
/** Random bytes drawn in bulk: one system call per 409 ids instead of one per id. */
const pool = Buffer.alloc(RANDOM_BYTES * 409);
let poolAt = pool.length;
let lastTime = -1;
const last = Buffer.alloc(RANDOM_BYTES);

/**
 * A new message id: a ULID (26 characters of Crockford base32: the time in ms, then 80 random
 * bits), the id format peerbus clients use. Ids made by one process sort in the order they were
 * made: within one millisecond (or when the clock steps back) the random part of the previous
 * id is incremented instead of drawn. Why time-ordered: a broker's id index then grows at its
 * end, so a commit of many messages writes a few index pages instead of one per message.
 */
export function newMessageId(now: number): string {
  if (now > lastTime) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    pool.copy(last, 0, poolAt, poolAt + RANDOM_BYTES);
    poolAt += RANDOM_BYTES;
    // The top bit stays clear, so increments within a millisecond never overflow 80 bits.
    last[0] = (last[0] as number) & 0x7f;
    lastTime = now;
  } else {
    for (let i = RANDOM_BYTES - 1; i >= 0; i--) {
      const byte = ((last[i] as number) + 1) & 0xff;
      last[i] = byte;
      if (byte !== 0) break;
    }
  }
  return encodeTime(lastTime) + encodeRandom(last);
}

function encodeTime(ms: number): string {
  let out = "";
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

/** 80 bits as 16 base32 digits, 5 bits each from the most significant. */
function encodeRandom(bytes: Buffer): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
