import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  bytesOf,
  chunks,
  chunksSync,
  type Register,
  readAll,
  rejectsWith,
  sha256,
  text,
} from "./object-store-contract-helpers.js";

export function registerObjectCases(test: Register): void {
  test("put then get and head return the bytes, size, etag and content type", async (store, p) => {
    const { etag } = await store.put(`${p}a.txt`, "hello wörld", { contentType: "text/plain" });
    assert.ok(typeof etag === "string" && etag.length > 0);
    const got = await store.get(`${p}a.txt`);
    assert.ok(got);
    assert.equal((await readAll(got.body)).toString("utf8"), "hello wörld");
    assert.equal(got.size, Buffer.byteLength("hello wörld"));
    assert.equal(got.etag, etag);
    assert.equal(got.contentType, "text/plain");
    assert.equal(got.key, `${p}a.txt`);
    const head = await store.head(`${p}a.txt`);
    assert.ok(head);
    assert.equal(head.etag, etag);
    assert.equal(head.size, got.size);
    assert.equal(head.contentType, "text/plain");
    assert.ok(Number.isFinite(head.lastModified) && head.lastModified > 0);
  });

  test("get with a range reads only those bytes, clamps the end and keeps the whole size", async (store, p) => {
    const bytes = Buffer.from("0123456789abcdef");
    const { etag } = await store.put(`${p}r`, bytes);
    const mid = await store.get(`${p}r`, { range: { start: 3, end: 7 } });
    assert.ok(mid);
    assert.equal((await readAll(mid.body)).toString(), "3456");
    assert.deepEqual(mid.range, { start: 3, end: 7 });
    assert.equal(mid.size, 16);
    assert.equal(mid.etag, etag);
    const tail = await store.get(`${p}r`, { range: { start: 10, end: 1000 } });
    assert.ok(tail);
    assert.equal((await readAll(tail.body)).toString(), "abcdef");
    assert.deepEqual(tail.range, { start: 10, end: 16 });
    assert.equal(await store.get(`${p}missing`, { range: { start: 0, end: 1 } }), null);
    await rejectsWith(store.get(`${p}r`, { range: { start: 5, end: 5 } }), "INVALID_ARGUMENT");
  });

  test("get and head of a missing object return null", async (store, p) => {
    assert.equal(await store.get(`${p}missing`), null);
    assert.equal(await store.head(`${p}missing`), null);
  });

  test("overwriting replaces the content and changes the etag; the same bytes again give the same etag", async (store, p) => {
    const first = await store.put(`${p}k`, "one");
    const second = await store.put(`${p}k`, "two");
    assert.notEqual(first.etag, second.etag);
    assert.equal(await text(store, `${p}k`), "two");
    assert.equal((await store.head(`${p}k`))?.etag, second.etag);
    const again = await store.put(`${p}k`, "one");
    assert.equal(again.etag, first.etag, "an etag follows the content of a single put");
  });

  test("delete removes the object and deleting a missing object succeeds", async (store, p) => {
    await store.put(`${p}k`, "x");
    await store.delete(`${p}k`);
    assert.equal(await store.head(`${p}k`), null);
    await store.delete(`${p}k`);
    await store.delete(`${p}never/existed`);
    assert.deepEqual((await store.list(p)).objects, []);
  });

  test("accepts bytes, strings, Node streams and async iterables, including empty bodies", async (store, p) => {
    const bytes = Uint8Array.from([0, 1, 2, 255, 254]);
    await store.put(`${p}bytes`, bytes);
    await store.put(`${p}empty`, new Uint8Array(0));
    await store.put(`${p}stream`, Readable.from([Buffer.from("ab"), Buffer.from("cd")]), { contentLength: 4 });
    await store.put(`${p}iter`, chunks(3, 1000));
    assert.deepEqual([...(await bytesOf(store, `${p}bytes`))], [...bytes]);
    assert.equal((await bytesOf(store, `${p}empty`)).byteLength, 0);
    assert.equal((await store.head(`${p}empty`))?.size, 0);
    assert.equal(await text(store, `${p}stream`), "abcd");
    assert.deepEqual(await bytesOf(store, `${p}iter`), Buffer.concat([...chunksSync(3, 1000)]));
  });

  test("streams a multi-MiB body in both directions, with and without contentLength", async (store, p) => {
    const total = 48 * 64 * 1024;
    const expected = sha256(Buffer.concat([...chunksSync(48, 64 * 1024)]));
    const noLength = await store.put(`${p}big1`, Readable.from(chunks(48, 64 * 1024)));
    await store.put(`${p}big2`, Readable.from(chunks(48, 64 * 1024)), { contentLength: total });
    for (const key of [`${p}big1`, `${p}big2`]) {
      const got = await store.get(key);
      assert.ok(got);
      assert.equal(got.size, total);
      const hash = createHash("sha256");
      let received = 0;
      for await (const chunk of got.body) {
        hash.update(chunk as Buffer);
        received += (chunk as Buffer).byteLength;
      }
      assert.equal(received, total);
      assert.equal(hash.digest("hex"), expected);
    }
    assert.equal((await store.head(`${p}big1`))?.etag, noLength.etag);
  });

  test("rejects unsafe keys with InvalidKeyError before touching anything", async (store, p) => {
    const bad = [
      "",
      "/abs",
      "..",
      ".",
      `${p}a/../b`,
      `${p}..`,
      `${p}./a`,
      `${p}a//b`,
      `${p}a/`,
      `${p}a\\b`,
      `${p}a\0b`,
      `${p}\uD800x`,
      "x".repeat(1025),
    ];
    for (const key of bad) {
      await rejectsWith(store.put(key, "x"), "INVALID_KEY", `put ${JSON.stringify(key)}`);
      await rejectsWith(store.get(key), "INVALID_KEY", `get ${JSON.stringify(key)}`);
      await rejectsWith(store.head(key), "INVALID_KEY", `head ${JSON.stringify(key)}`);
      await rejectsWith(store.delete(key), "INVALID_KEY", `delete ${JSON.stringify(key)}`);
      await rejectsWith(store.initMultipart(key), "INVALID_KEY", `initMultipart ${JSON.stringify(key)}`);
    }
    assert.deepEqual((await store.list(p)).objects, []);
  });

  test("rejects a bad list limit and a bad ifNoneMatch with InvalidArgumentError", async (store, p) => {
    await rejectsWith(store.list(p, { limit: 0 }), "INVALID_ARGUMENT");
    await rejectsWith(store.list(p, { limit: 1.5 }), "INVALID_ARGUMENT");
    await rejectsWith(store.put(`${p}k`, "x", { ifNoneMatch: "etag" as "*" }), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}k`), null);
  });

  test("a bad range or list cursor is InvalidArgumentError before any lookup", async (store, p) => {
    for (const range of [
      { start: 5, end: 2 },
      { start: -1, end: 2 },
      { start: 0, end: 0 },
      { start: 0.5, end: 2 },
    ]) {
      await rejectsWith(store.get(`${p}missing`, { range }), "INVALID_ARGUMENT", `range ${JSON.stringify(range)}`);
    }
    await rejectsWith(store.list(p, { cursor: 5 as unknown as string }), "INVALID_ARGUMENT");
  });

  test("a content type that cannot travel as an HTTP header value is InvalidArgumentError and writes nothing", async (store, p) => {
    for (const contentType of ["text/plain\r\nx-injected: 1", "text/plain\n", "bild/ünï", 5 as unknown as string]) {
      const what = JSON.stringify(contentType);
      await rejectsWith(store.put(`${p}k`, "x", { contentType }), "INVALID_ARGUMENT", `put ${what}`);
      await rejectsWith(store.initMultipart(`${p}m`, { contentType }), "INVALID_ARGUMENT", `initMultipart ${what}`);
    }
    assert.equal(await store.head(`${p}k`), null);
    await store.put(`${p}k`, "x", { contentType: 'text/plain; charset="utf-8"' });
    assert.equal((await store.head(`${p}k`))?.contentType, 'text/plain; charset="utf-8"');
  });

  test("many concurrent puts, gets and deletes on distinct keys", async (store, p) => {
    const keys = Array.from({ length: 40 }, (_, i) => `${p}c/${i}`);
    await Promise.all(keys.map((key, i) => store.put(key, `value-${i}`)));
    const values = await Promise.all(keys.map((key) => text(store, key)));
    assert.deepEqual(
      values,
      keys.map((_, i) => `value-${i}`),
    );
    await Promise.all(keys.filter((_, i) => i % 2 === 0).map((key) => store.delete(key)));
    assert.equal((await store.list(`${p}c/`)).objects.length, 20);
  });

  test("after close every call throws ClosedError and close is idempotent", async (store, p) => {
    await store.put(`${p}k`, "x");
    await store.close();
    await store.close();
    await rejectsWith(store.get(`${p}k`), "CLOSED");
    await rejectsWith(store.put(`${p}k`, "y"), "CLOSED");
    await rejectsWith(store.list(p), "CLOSED");
    await rejectsWith(store.initMultipart(`${p}k`), "CLOSED");
  });
}
