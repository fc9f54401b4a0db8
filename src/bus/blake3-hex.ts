import { createBLAKE3 } from "hash-wasm";

/**
 * BLAKE3 through hash-wasm's WebAssembly build: measured in bench/bus.bench.ts against
 * blake3-wasm (same speed, CommonJS-only, unmaintained since 2020) and @noble/hashes (about
 * 7x slower on 200-byte events). One hasher is reused; calls are synchronous, so they never
 * interleave.
 */
const hasher = await createBLAKE3();

/** Lowercase hex BLAKE3-256 of the concatenation of `parts` (strings are hashed as UTF-8). */
export function blake3Hex(...parts: (Uint8Array | string)[]): string {
  hasher.init();
  for (const part of parts) hasher.update(part);
  return hasher.digest("hex");
}
