import { createHmac } from "node:crypto";
import fc from "fast-check";
import { createBLAKE3 } from "hash-wasm";
import { describe, expect, it } from "vitest";
import { AUDIT_GENESIS_HASH } from "../../src/bus/audit-log.js";
import { blake3Hex } from "../../src/bus/blake3-hex.js";
import { hmacSha256 } from "../../src/bus/wire/hmac-sha256.js";

const bytesOf = (p: Uint8Array | string) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p));

describe("bus hashes", () => {
  it("property: hmacSha256 equals createHmac for any key length, string or bytes, short or past the reused buffer", () => {
    const message = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom("", "x".repeat(21_000), "é".repeat(21_000), "€".repeat(21_001), "x".repeat(70_000)),
    );
    // Keys are used more than once: the pads prepared for a key must not change between calls.
    const keys = fc.array(fc.uint8Array({ minLength: 1, maxLength: 130 }), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(keys, fc.array(fc.tuple(fc.nat(), message), { maxLength: 6 }), (raw, calls) => {
        const buffers = raw.map((k) => Buffer.from(k));
        for (const [pick, m] of calls) {
          const key = buffers[pick % buffers.length] as Buffer;
          const expected = createHmac("sha256", key).update(bytesOf(m)).digest();
          expect(hmacSha256(key, m).equals(expected)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("blake3Hex gives the specification's vector for the empty input", () => {
    expect(blake3Hex(new Uint8Array(0))).toBe(AUDIT_GENESIS_HASH);
    expect(blake3Hex("")).toBe(AUDIT_GENESIS_HASH);
  });

  it("property: blake3Hex of several parts is hash-wasm's BLAKE3 of their bytes joined, large parts too", async () => {
    const reference = await createBLAKE3();
    const part = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 80 }),
      fc.uint8Array({ maxLength: 400 }),
      fc.constantFrom("€".repeat(30_000), new Uint8Array(70_000).fill(7)),
    );
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const joined = Buffer.concat(parts.map(bytesOf));
        expect(blake3Hex(...parts)).toBe(reference.init().update(joined).digest("hex"));
      }),
      { numRuns: 300 },
    );
    // The reused hasher starts over: a short input after a long one hashes alone.
    expect(blake3Hex("", new Uint8Array(0))).toBe(AUDIT_GENESIS_HASH);
  });
});
