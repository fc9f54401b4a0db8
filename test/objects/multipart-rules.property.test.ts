import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isStoreError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";

const PART = 8;

describe("multipart completion rules (property)", () => {
  it("completion succeeds exactly when the parts are 1..N, etags match and non-final parts are full", async () => {
    await fc.assert(
      fc.asyncProperty(
        // Uploaded parts: number -> size (some below partSize).
        fc.dictionary(fc.integer({ min: 1, max: 6 }).map(String), fc.integer({ min: 0, max: 12 }), { maxKeys: 6 }),
        // The list handed to complete: part numbers (maybe missing, duplicated, unknown) and whether the etag is tampered.
        fc.array(fc.record({ n: fc.integer({ min: 0, max: 7 }), tamper: fc.boolean() }), { maxLength: 7 }),
        async (uploaded, listed) => {
          const store = new MemoryObjectStore({ partSize: PART });
          const uploadId = await store.initMultipart("k");
          const etags = new Map<number, string>();
          const sizes = new Map<number, number>();
          for (const [n, size] of Object.entries(uploaded)) {
            const { etag } = await store.putPart("k", uploadId, Number(n), Buffer.alloc(size, Number(n)));
            etags.set(Number(n), etag);
            sizes.set(Number(n), size);
          }
          const parts = listed.map(({ n, tamper }) => ({
            partNumber: n,
            etag: tamper ? "bogus" : (etags.get(n) ?? "none"),
          }));
          const numbers = parts.map((p) => p.partNumber).sort((a, b) => a - b);
          const valid =
            parts.length > 0 &&
            numbers.every((n, i) => n === i + 1) &&
            parts.every((p) => etags.get(p.partNumber) === p.etag) &&
            numbers.slice(0, -1).every((n) => (sizes.get(n) ?? 0) >= PART);
          const outcome = await store.completeMultipart("k", uploadId, parts).then(
            (info) => info,
            (err: unknown) => err,
          );
          if (valid) {
            expect(isStoreError(outcome)).toBe(false);
            const expectedSize = numbers.reduce((sum, n) => sum + (sizes.get(n) ?? 0), 0);
            expect((await store.head("k"))?.size).toBe(expectedSize);
          } else {
            expect(isStoreError(outcome, "INVALID_ARGUMENT")).toBe(true);
            expect(await store.head("k")).toBeNull();
          }
          await store.close();
        },
      ),
      { numRuns: 300 },
    );
  });
});
