import { createBLAKE3 } from "hash-wasm";

/**
 * BLAKE3 through hash-wasm's WebAssembly build. bench/bus.bench.ts measures it against
 * blake3-wasm 2.1.5 and @noble/hashes:
 * - blake3-wasm: within run-to-run noise of hash-wasm (0.9x to 1.6x either way), but
 *   CommonJS-only and unmaintained since 2020.
 * - @noble/hashes: 13x to 60x slower on 200-byte events.
 *
 * Inputs of one chunk (up to 1,024 bytes: every audit link) are hashed by {@link oneChunkHex}
 * in JavaScript instead: for such sizes the calls into the WebAssembly module and their copies
 * cost more than the hashing, and it is about twice as fast.
 *
 * One hasher is reused. Calls are synchronous, so they never interleave.
 */
const hasher = await createBLAKE3();

/** BLAKE3's chunk: a longer input is a tree of chunks, hashed by hash-wasm. */
const CHUNK = 1024;

/** Lowercase hex BLAKE3-256 of the concatenation of `parts` (strings are hashed as UTF-8). */
export function blake3Hex(...parts: (Uint8Array | string)[]): string {
  const bytes = parts.length === 1 && typeof parts[0] !== "string" ? (parts[0] as Uint8Array) : joined(parts);
  if (bytes.length <= CHUNK) return oneChunkHex(bytes);
  hasher.init();
  // One update of joined bytes: each call into the WebAssembly module costs more than the copy.
  hasher.update(bytes);
  // Node's hex encoder is faster than hash-wasm's, which builds the string in JavaScript.
  const digest = hasher.digest("binary");
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex");
}

const IV = [
  0x6a09e667 | 0,
  0xbb67ae85 | 0,
  0x3c6ef372 | 0,
  0xa54ff53a | 0,
  0x510e527f | 0,
  0x9b05688c | 0,
  0x1f83d9ab | 0,
  0x5be0cd19 | 0,
];
const CHUNK_START = 1;
const CHUNK_END = 2;
const ROOT = 8;
/** The message word order of each of the 7 rounds: the identity, then BLAKE3's permutation applied once more per round. */
const SCHEDULE = new Uint8Array(7 * 16);
{
  const permutation = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  let order = permutation.map((_, i) => i);
  for (let r = 0; r < 7; r++) {
    SCHEDULE.set(order, 16 * r);
    order = permutation.map((p) => order[p] as number);
  }
}
/** The chaining value, then the output. */
const cv = new Int32Array(8);
/** The message block as 16 little-endian words. */
const block = new Int32Array(16);
const digestBytes = Buffer.alloc(32);

/**
 * BLAKE3 of one chunk (the root chunk: counter 0, key words the IV), per the specification:
 * each 64-byte block (one empty block for empty input) is compressed into the chaining value,
 * the first with CHUNK_START, the last with CHUNK_END and ROOT; the output is the last
 * compression's first 8 words, little-endian.
 */
function oneChunkHex(bytes: Uint8Array): string {
  const length = bytes.length;
  cv.set(IV);
  const blocks = length === 0 ? 1 : (length + 63) >> 6;
  for (let b = 0; b < blocks; b++) {
    const start = b << 6;
    const n = Math.min(64, length - start);
    if (n === 64) {
      for (let i = 0; i < 16; i++) {
        const o = start + 4 * i;
        block[i] =
          (bytes[o] as number) |
          ((bytes[o + 1] as number) << 8) |
          ((bytes[o + 2] as number) << 16) |
          ((bytes[o + 3] as number) << 24);
      }
    } else {
      block.fill(0);
      for (let i = 0; i < n; i++)
        block[i >> 2] = (block[i >> 2] as number) | ((bytes[start + i] as number) << (8 * (i & 3)));
    }
    compress(n, (b === 0 ? CHUNK_START : 0) | (b === blocks - 1 ? CHUNK_END | ROOT : 0));
  }
  for (let i = 0; i < 8; i++) {
    const v = cv[i] as number;
    digestBytes[4 * i] = v;
    digestBytes[4 * i + 1] = v >>> 8;
    digestBytes[4 * i + 2] = v >>> 16;
    digestBytes[4 * i + 3] = v >>> 24;
  }
  return digestBytes.toString("hex");
}

/**
 * The compression function over {@link block} into {@link cv} (block counter 0). The state
 * lives in 16 locals across the 7 rounds; each line pair is one G mixing (a column, then a
 * diagonal) with the round's message words from {@link SCHEDULE}.
 */
function compress(blockLength: number, flags: number): void {
  const w = block;
  const k = SCHEDULE;
  let s0 = cv[0] as number;
  let s1 = cv[1] as number;
  let s2 = cv[2] as number;
  let s3 = cv[3] as number;
  let s4 = cv[4] as number;
  let s5 = cv[5] as number;
  let s6 = cv[6] as number;
  let s7 = cv[7] as number;
  let s8 = IV[0] as number;
  let s9 = IV[1] as number;
  let s10 = IV[2] as number;
  let s11 = IV[3] as number;
  let s12 = 0;
  let s13 = 0;
  let s14 = blockLength;
  let s15 = flags;
  // biome-ignore format: one G per line pair reads as the specification does.
  for (let r = 0; r < 112; r += 16) {
    s0 = (s0 + s4 + (w[k[r] as number] as number)) | 0; s12 ^= s0; s12 = (s12 >>> 16) | (s12 << 16); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 12) | (s4 << 20);
    s0 = (s0 + s4 + (w[k[r + 1] as number] as number)) | 0; s12 ^= s0; s12 = (s12 >>> 8) | (s12 << 24); s8 = (s8 + s12) | 0; s4 ^= s8; s4 = (s4 >>> 7) | (s4 << 25);
    s1 = (s1 + s5 + (w[k[r + 2] as number] as number)) | 0; s13 ^= s1; s13 = (s13 >>> 16) | (s13 << 16); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 12) | (s5 << 20);
    s1 = (s1 + s5 + (w[k[r + 3] as number] as number)) | 0; s13 ^= s1; s13 = (s13 >>> 8) | (s13 << 24); s9 = (s9 + s13) | 0; s5 ^= s9; s5 = (s5 >>> 7) | (s5 << 25);
    s2 = (s2 + s6 + (w[k[r + 4] as number] as number)) | 0; s14 ^= s2; s14 = (s14 >>> 16) | (s14 << 16); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 12) | (s6 << 20);
    s2 = (s2 + s6 + (w[k[r + 5] as number] as number)) | 0; s14 ^= s2; s14 = (s14 >>> 8) | (s14 << 24); s10 = (s10 + s14) | 0; s6 ^= s10; s6 = (s6 >>> 7) | (s6 << 25);
    s3 = (s3 + s7 + (w[k[r + 6] as number] as number)) | 0; s15 ^= s3; s15 = (s15 >>> 16) | (s15 << 16); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 12) | (s7 << 20);
    s3 = (s3 + s7 + (w[k[r + 7] as number] as number)) | 0; s15 ^= s3; s15 = (s15 >>> 8) | (s15 << 24); s11 = (s11 + s15) | 0; s7 ^= s11; s7 = (s7 >>> 7) | (s7 << 25);
    s0 = (s0 + s5 + (w[k[r + 8] as number] as number)) | 0; s15 ^= s0; s15 = (s15 >>> 16) | (s15 << 16); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 12) | (s5 << 20);
    s0 = (s0 + s5 + (w[k[r + 9] as number] as number)) | 0; s15 ^= s0; s15 = (s15 >>> 8) | (s15 << 24); s10 = (s10 + s15) | 0; s5 ^= s10; s5 = (s5 >>> 7) | (s5 << 25);
    s1 = (s1 + s6 + (w[k[r + 10] as number] as number)) | 0; s12 ^= s1; s12 = (s12 >>> 16) | (s12 << 16); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 12) | (s6 << 20);
    s1 = (s1 + s6 + (w[k[r + 11] as number] as number)) | 0; s12 ^= s1; s12 = (s12 >>> 8) | (s12 << 24); s11 = (s11 + s12) | 0; s6 ^= s11; s6 = (s6 >>> 7) | (s6 << 25);
    s2 = (s2 + s7 + (w[k[r + 12] as number] as number)) | 0; s13 ^= s2; s13 = (s13 >>> 16) | (s13 << 16); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 12) | (s7 << 20);
    s2 = (s2 + s7 + (w[k[r + 13] as number] as number)) | 0; s13 ^= s2; s13 = (s13 >>> 8) | (s13 << 24); s8 = (s8 + s13) | 0; s7 ^= s8; s7 = (s7 >>> 7) | (s7 << 25);
    s3 = (s3 + s4 + (w[k[r + 14] as number] as number)) | 0; s14 ^= s3; s14 = (s14 >>> 16) | (s14 << 16); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 12) | (s4 << 20);
    s3 = (s3 + s4 + (w[k[r + 15] as number] as number)) | 0; s14 ^= s3; s14 = (s14 >>> 8) | (s14 << 24); s9 = (s9 + s14) | 0; s4 ^= s9; s4 = (s4 >>> 7) | (s4 << 25);
  }
  cv[0] = s0 ^ s8;
  cv[1] = s1 ^ s9;
  cv[2] = s2 ^ s10;
  cv[3] = s3 ^ s11;
  cv[4] = s4 ^ s12;
  cv[5] = s5 ^ s13;
  cv[6] = s6 ^ s14;
  cv[7] = s7 ^ s15;
}

/** Reused for joining small inputs (an audit link is 64 hex characters and an event of about 100 bytes). */
let scratch = Buffer.allocUnsafe(4096);

/** The parts' bytes one after another, in `scratch` (valid until the next call) unless they are large. */
function joined(parts: readonly (Uint8Array | string)[]): Uint8Array {
  let bound = 0;
  for (const p of parts) bound += typeof p === "string" ? 3 * p.length : p.length;
  if (bound > 1 << 16) return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)));
  if (bound > scratch.length) scratch = Buffer.allocUnsafe(1 << 16);
  let at = 0;
  for (const p of parts) {
    if (typeof p === "string") at += scratch.write(p, at, "utf8");
    else {
      scratch.set(p, at);
      at += p.length;
    }
  }
  return scratch.subarray(0, at);
}
