import { createBLAKE3 } from "hash-wasm";

/**
 * BLAKE3 through hash-wasm's WebAssembly build. bench/bus.bench.ts measures it against
 * blake3-wasm 2.1.5 and @noble/hashes:
 * - blake3-wasm: within run-to-run noise of hash-wasm (0.9x to 1.6x either way), but
 *   CommonJS-only and unmaintained since 2020.
 * - @noble/hashes: 13x to 60x slower on 200-byte events.
 *
 * One hasher is reused. Calls are synchronous, so they never interleave.
 */
const hasher = await createBLAKE3();

/** Lowercase hex BLAKE3-256 of the concatenation of `parts` (strings are hashed as UTF-8). */
export function blake3Hex(...parts: (Uint8Array | string)[]): string {
  hasher.init();
  // One update of joined bytes: each call into the WebAssembly module costs more than the copy.
  hasher.update(parts.length === 1 && typeof parts[0] !== "string" ? (parts[0] as Uint8Array) : joined(parts));
  // Node's hex encoder is faster than hash-wasm's, which builds the string in JavaScript.
  const digest = hasher.digest("binary");
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString("hex");
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
