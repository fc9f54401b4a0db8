import { strict as assert } from "node:assert";
import { createHash, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { isStoreError } from "../errors.js";
import type { ObjectStore } from "../objects/object-store.js";

/** Test groups of {@link runObjectStoreContract}. */
export type ObjectStoreContractGroup = "objects" | "list" | "conditional" | "multipart";

/** The test-runner functions the contract registers its cases with (vitest, node:test, mocha...). */
export interface ContractRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
}

/** Options of {@link runObjectStoreContract}. */
export interface ObjectStoreContractOptions extends ContractRunner {
  /** Which groups to register. Default all four. */
  groups?: readonly ObjectStoreContractGroup[];
  /** Name of the enclosing `describe`. Default `"ObjectStore contract"`. */
  name?: string;
}

/**
 * Registers the ObjectStore contract: get/put/head/delete/list (prefix boundaries, pagination),
 * body kinds and streaming, key validation, conditional puts (including races), and the seed's
 * ten multipart cases plus a few more. `openFresh` is called once per case; every case works
 * under its own random prefix, so stores may share a bucket or root. Each case closes its store.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * runObjectStoreContract(() => new MemoryObjectStore(), { describe, it });
 * ```
 */
export function runObjectStoreContract(
  openFresh: () => ObjectStore | Promise<ObjectStore>,
  options: ObjectStoreContractOptions,
): void {
  const { describe, it } = options;
  const groups = new Set(options.groups ?? ["objects", "list", "conditional", "multipart"]);
  const test = (name: string, fn: (store: ObjectStore, prefix: string) => Promise<void>) =>
    it(name, async () => {
      const store = await openFresh();
      try {
        await fn(store, `contract-${randomUUID()}/`);
      } finally {
        await store.close();
      }
    });

  describe(options.name ?? "ObjectStore contract", () => {
    if (groups.has("objects")) describe("objects", () => registerObjectCases(test));
    if (groups.has("list")) describe("list", () => registerListCases(test));
    if (groups.has("conditional")) describe("conditional put", () => registerConditionalCases(test));
    if (groups.has("multipart")) describe("multipart", () => registerMultipartCases(test));
  });
}

type Register = (name: string, fn: (store: ObjectStore, prefix: string) => Promise<void>) => void;

function registerObjectCases(test: Register): void {
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

  test("get and head of a missing object return null", async (store, p) => {
    assert.equal(await store.get(`${p}missing`), null);
    assert.equal(await store.head(`${p}missing`), null);
  });

  test("overwriting replaces the content and changes the etag", async (store, p) => {
    const first = await store.put(`${p}k`, "one");
    const second = await store.put(`${p}k`, "two");
    assert.notEqual(first.etag, second.etag);
    assert.equal(await text(store, `${p}k`), "two");
    assert.equal((await store.head(`${p}k`))?.etag, second.etag);
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

function registerListCases(test: Register): void {
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

function registerConditionalCases(test: Register): void {
  test('ifNoneMatch "*" creates a missing object and refuses an existing one', async (store, p) => {
    const created = await store.put(`${p}k`, "first", { ifNoneMatch: "*" });
    await rejectsWith(store.put(`${p}k`, "second", { ifNoneMatch: "*" }), "CONFLICT");
    assert.equal(await text(store, `${p}k`), "first");
    assert.equal((await store.head(`${p}k`))?.etag, created.etag);
  });

  test("ifMatch writes only over the given etag", async (store, p) => {
    const v1 = await store.put(`${p}k`, "v1");
    const v2 = await store.put(`${p}k`, "v2", { ifMatch: v1.etag });
    assert.equal(await text(store, `${p}k`), "v2");
    await rejectsWith(store.put(`${p}k`, "stale", { ifMatch: v1.etag }), "CONFLICT");
    assert.equal(await text(store, `${p}k`), "v2");
    const v3 = await store.put(`${p}k`, "v3", { ifMatch: v2.etag });
    assert.equal((await store.head(`${p}k`))?.etag, v3.etag);
  });

  test("ifMatch on a missing object is a conflict and creates nothing", async (store, p) => {
    const other = await store.put(`${p}other`, "x");
    await rejectsWith(store.put(`${p}k`, "v", { ifMatch: other.etag }), "CONFLICT");
    assert.equal(await store.head(`${p}k`), null);
  });

  test('concurrent ifNoneMatch "*" creators: exactly one wins', async (store, p) => {
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => store.put(`${p}k`, `writer-${i}`, { ifNoneMatch: "*" })),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1);
    for (const r of results)
      if (r.status === "rejected") assert.ok(isStoreError(r.reason, "CONFLICT"), String(r.reason));
    assert.equal(await text(store, `${p}k`), `writer-${winners[0]}`);
  });

  test("concurrent ifMatch writers over one etag: exactly one wins, the rest conflict", async (store, p) => {
    const base = await store.put(`${p}k`, "base");
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => store.put(`${p}k`, `writer-${i}`, { ifMatch: base.etag })),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1);
    for (const r of results)
      if (r.status === "rejected") assert.ok(isStoreError(r.reason, "CONFLICT"), String(r.reason));
    assert.equal(await text(store, `${p}k`), `writer-${winners[0]}`);
  });

  test("a compare-and-swap loop of concurrent incrementers loses no update", async (store, p) => {
    await store.put(`${p}counter`, "0");
    const increment = async () => {
      for (;;) {
        const got = await store.get(`${p}counter`);
        assert.ok(got);
        const value = Number((await readAll(got.body)).toString("utf8"));
        try {
          await store.put(`${p}counter`, String(value + 1), { ifMatch: got.etag });
          return;
        } catch (err) {
          if (!isStoreError(err, "CONFLICT")) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, increment));
    assert.equal(await text(store, `${p}counter`), "8");
  });
}

function registerMultipartCases(test: Register): void {
  const upload = async (store: ObjectStore, key: string, sizes: number[], contentType?: string) => {
    const uploadId = await store.initMultipart(key, contentType === undefined ? {} : { contentType });
    const parts = [];
    const datas: Buffer[] = [];
    for (const [i, size] of sizes.entries()) {
      const data = filled(size, i + 1);
      datas.push(data);
      const result = await store.putPart(key, uploadId, i + 1, data);
      assert.equal(result.size, size);
      parts.push({ partNumber: i + 1, etag: result.etag });
    }
    return { uploadId, parts, content: Buffer.concat(datas) };
  };

  test("seed 1: happy path assembles the parts in order, keeps the content type, closes the upload", async (store, p) => {
    const ps = store.partSize;
    const { uploadId, parts, content } = await upload(store, `${p}obj`, [ps, ps, 17], "application/pdf");
    const info = await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.equal(info.key, `${p}obj`);
    assert.equal(info.size, 2 * ps + 17);
    const got = await store.get(`${p}obj`);
    assert.ok(got);
    assert.equal(got.etag, info.etag);
    assert.equal(got.contentType, "application/pdf");
    assert.equal(sha256(await readAll(got.body)), sha256(content));
  });

  test("seed 2: re-uploading a part number replaces it (last writer wins)", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, 5]);
    const replaced = await store.putPart(`${p}obj`, uploadId, 2, "later");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "INVALID_ARGUMENT");
    await store.completeMultipart(`${p}obj`, uploadId, [parts[0] as never, { partNumber: 2, etag: replaced.etag }]);
    const bytes = await bytesOf(store, `${p}obj`);
    assert.equal(bytes.subarray(store.partSize).toString(), "later");
  });

  test("seed 3: an etag mismatch is rejected and keeps the upload open", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, 3]);
    const wrong = parts.map((part) =>
      part.partNumber === 2 ? { ...part, etag: "0123456789abcdef0123456789abcdef" } : part,
    );
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, wrong), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
    const info = await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.equal(info.size, store.partSize + 3);
  });

  test("seed 4: a gap in the part numbers is rejected", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, store.partSize, 3]);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[0], parts[2]] as never), "INVALID_ARGUMENT");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[1], parts[2]] as never), "INVALID_ARGUMENT");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[0], parts[0]] as never), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("seed 5: completing with no parts is rejected", async (store, p) => {
    const uploadId = await store.initMultipart(`${p}obj`);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, []), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("seed 6: completing a completed upload is NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "NOT_FOUND");
  });

  test("seed 7: putPart after complete is NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    await rejectsWith(store.putPart(`${p}obj`, uploadId, 2, "late"), "NOT_FOUND");
    assert.equal((await store.head(`${p}obj`))?.size, 9);
  });

  test("seed 8: abort is idempotent, also for unknown uploads", async (store, p) => {
    const { uploadId } = await upload(store, `${p}obj`, [9]);
    await store.abortMultipart(`${p}obj`, uploadId);
    await store.abortMultipart(`${p}obj`, uploadId);
    await store.abortMultipart(`${p}obj`, "no-such-upload");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("seed 9: putPart and complete after abort are NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.abortMultipart(`${p}obj`, uploadId);
    await rejectsWith(store.putPart(`${p}obj`, uploadId, 1, "again"), "NOT_FOUND");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "NOT_FOUND");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("seed 10: a non-final part smaller than partSize is rejected", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize - 1, 3]);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("part numbers outside 1..maxPartCount are InvalidArgumentError", async (store, p) => {
    const uploadId = await store.initMultipart(`${p}obj`);
    for (const n of [0, -1, 1.5, Number.isFinite(store.maxPartCount) ? store.maxPartCount + 1 : Number.NaN]) {
      await rejectsWith(store.putPart(`${p}obj`, uploadId, n, "x"), "INVALID_ARGUMENT", `part ${n}`);
    }
    await store.abortMultipart(`${p}obj`, uploadId);
  });

  test("an upload id is bound to its key; unknown ids are NotFoundError", async (store, p) => {
    const uploadId = await store.initMultipart(`${p}obj`);
    await rejectsWith(store.putPart(`${p}other`, uploadId, 1, "x"), "NOT_FOUND");
    await rejectsWith(store.putPart(`${p}obj`, "no-such-upload", 1, "x"), "NOT_FOUND");
    await rejectsWith(
      store.completeMultipart(`${p}obj`, "no-such-upload", [{ partNumber: 1, etag: "x" }]),
      "NOT_FOUND",
    );
    await store.abortMultipart(`${p}obj`, uploadId);
  });

  test("parts upload concurrently, from streams, and may be listed out of order at completion", async (store, p) => {
    const ps = store.partSize;
    const uploadId = await store.initMultipart(`${p}obj`);
    const datas = [filled(ps, 1), filled(ps, 2), filled(ps, 3), filled(11, 4)];
    const results = await Promise.all(
      datas.map((data, i) =>
        store.putPart(`${p}obj`, uploadId, i + 1, Readable.from([data.subarray(0, 5), data.subarray(5)]), {
          contentLength: data.byteLength,
        }),
      ),
    );
    const parts = results.map((r, i) => ({ partNumber: i + 1, etag: r.etag })).reverse();
    const info = await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.equal(info.size, 3 * ps + 11);
    assert.equal(sha256(await bytesOf(store, `${p}obj`)), sha256(Buffer.concat(datas)));
    assert.equal((await store.head(`${p}obj`))?.etag, info.etag);
  });

  test("a completed multipart upload replaces an existing object", async (store, p) => {
    await store.put(`${p}obj`, "old");
    const { uploadId, parts, content } = await upload(store, `${p}obj`, [20]);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.deepEqual(await bytesOf(store, `${p}obj`), content);
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isStoreError(err, code), `${message ?? ""} expected ${code}, got ${String(err)}`);
    return true;
  });
}

async function readAll(body: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

async function bytesOf(store: ObjectStore, key: string): Promise<Buffer> {
  const got = await store.get(key);
  assert.ok(got, `object ${key} is missing`);
  return readAll(got.body);
}

async function text(store: ObjectStore, key: string): Promise<string> {
  return (await bytesOf(store, key)).toString("utf8");
}

function filled(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

function* chunksSync(count: number, size: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield filled(size, i);
}

async function* chunks(count: number, size: number): AsyncGenerator<Buffer> {
  for (const chunk of chunksSync(count, size)) {
    await Promise.resolve();
    yield chunk;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
