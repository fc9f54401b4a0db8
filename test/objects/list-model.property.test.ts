import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-objects-prop-");
let n = 0;

// Segments from a tiny alphabet chosen to hit the ordering traps: "-" and "." sort before "/",
// "é" is multi-byte UTF-8, "\u{1F600}" is a surrogate pair (UTF-16 order != UTF-8 order).
const segment = fc
  .array(fc.constantFrom("a", "b", "-", ".", "é", "\u{1F600}", "\uFF21"), { minLength: 1, maxLength: 3 })
  .map((chars) => chars.join(""))
  .filter((s) => s !== "." && s !== "..");
const key = fc.array(segment, { minLength: 1, maxLength: 3 }).map((segments) => segments.join("/"));

async function listAll(store: ObjectStore, prefix: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, cursor === undefined ? { limit } : { limit, cursor });
    expect(page.objects.length).toBeLessThanOrEqual(limit);
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

const backends: [string, () => ObjectStore][] = [
  ["MemoryObjectStore", () => new MemoryObjectStore()],
  ["FileObjectStore", () => new FileObjectStore({ root: `${dir}/r${++n}` })],
];

describe.each(backends)("%s list against a model", (_name, open) => {
  it("paged listing equals the sorted, prefix-filtered key set for any keys, prefix and limit", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(key, { minLength: 0, maxLength: 14 }),
        fc.oneof(
          key,
          key.map((k) => `${k}/`),
          fc.constant(""),
          segment,
        ),
        fc.integer({ min: 1, max: 5 }),
        async (keys, prefix, limit) => {
          const store = open();
          try {
            for (const k of keys) await store.put(k, k);
            const expected = keys
              .filter((k) => k.startsWith(prefix))
              .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
            expect(await listAll(store, prefix, limit)).toEqual(expected);
            const trimmed = prefix.slice(0, Math.max(0, prefix.length - 1));
            expect(await listAll(store, trimmed, limit)).toEqual(
              keys.filter((k) => k.startsWith(trimmed)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
            );
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
