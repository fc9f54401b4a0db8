import { strict as assert } from "node:assert";
import { byUtf8, type Register } from "./object-store-contract-helpers.js";

export function registerListCases(test: Register): void {
  test("list matches plain string prefixes, in key order, with folder and sibling boundaries", async (store, p) => {
    const keys = [`${p}a`, `${p}a-`, `${p}a/b`, `${p}a/b/c`, `${p}ab`, `${p}b`, `${p}a.txt`];
    for (const key of keys) await store.put(key, key);
    const names = async (prefix: string) => (await store.list(prefix)).objects.map((o) => o.key.slice(p.length));
    assert.deepEqual(await names(`${p}a`), ["a", "a-", "a.txt", "a/b", "a/b/c", "ab"]);
    assert.deepEqual(await names(`${p}a/`), ["a/b", "a/b/c"]);
    assert.deepEqual(await names(`${p}a/b`), ["a/b", "a/b/c"]);
    assert.deepEqual(await names(`${p}a/b/`), ["a/b/c"]);
    assert.deepEqual(await names(`${p}ab`), ["ab"]);
    assert.deepEqual(await names(`${p}c`), []);
    assert.deepEqual(await names(p), ["a", "a-", "a.txt", "a/b", "a/b/c", "ab", "b"]);
    const page = await store.list(`${p}a/b`);
    assert.equal(page.cursor, undefined);
    const info = page.objects[0];
    assert.ok(info);
    assert.equal(info.size, Buffer.byteLength(`${p}a/b`));
    assert.equal(info.etag, (await store.head(`${p}a/b`))?.etag);
  });

  test("list pages with a cursor: every key once, in order, pages no larger than the limit", async (store, p) => {
    const keys = Array.from({ length: 23 }, (_, i) => `${p}${i % 2 ? "odd" : "even"}/${String(i).padStart(3, "0")}`);
    await Promise.all(keys.map((key) => store.put(key, "x")));
    for (const limit of [1, 5, 23, 100]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.list(p, cursor === undefined ? { limit } : { limit, cursor });
        assert.ok(page.objects.length <= limit);
        seen.push(...page.objects.map((o) => o.key));
        cursor = page.cursor;
        pages += 1;
        assert.ok(pages <= 30, "pagination does not terminate");
      } while (cursor !== undefined);
      assert.deepEqual(seen, [...keys].sort(byUtf8));
    }
  });
}
