import { strict as assert } from "node:assert";
import { Readable } from "node:stream";
import type { ObjectStore } from "../objects/index.js";
import { bytesOf, filled, type Register, readAll, rejectsWith, sha256 } from "./object-store-contract-helpers.js";

export function registerMultipartCases(test: Register): void {
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

  test("multipart 1: happy path assembles the parts in order, keeps the content type, closes the upload", async (store, p) => {
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

  test("the store keeps no reference to a body: reusing the buffer after put/putPart changes nothing stored", async (store, p) => {
    const buffer = filled(store.partSize, 7);
    await store.put(`${p}put`, buffer);
    const uploadId = await store.initMultipart(`${p}obj`);
    const first = await store.putPart(`${p}obj`, uploadId, 1, buffer);
    buffer.fill(9);
    const second = await store.putPart(`${p}obj`, uploadId, 2, buffer.subarray(0, 3));
    buffer.fill(1);
    await store.completeMultipart(`${p}obj`, uploadId, [
      { partNumber: 1, etag: first.etag },
      { partNumber: 2, etag: second.etag },
    ]);
    assert.deepEqual(await bytesOf(store, `${p}put`), filled(store.partSize, 7));
    assert.deepEqual(await bytesOf(store, `${p}obj`), Buffer.concat([filled(store.partSize, 7), Buffer.alloc(3, 9)]));
  });

  test("multipart 2: re-uploading a part number replaces it (last writer wins)", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, 5]);
    const replaced = await store.putPart(`${p}obj`, uploadId, 2, "later");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "INVALID_ARGUMENT");
    await store.completeMultipart(`${p}obj`, uploadId, [parts[0] as never, { partNumber: 2, etag: replaced.etag }]);
    const bytes = await bytesOf(store, `${p}obj`);
    assert.equal(bytes.subarray(store.partSize).toString(), "later");
  });

  test("multipart 3: an etag mismatch is rejected and keeps the upload open", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, 3]);
    const wrong = parts.map((part) =>
      part.partNumber === 2 ? { ...part, etag: "0123456789abcdef0123456789abcdef" } : part,
    );
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, wrong), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
    const info = await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.equal(info.size, store.partSize + 3);
  });

  test("multipart 4: a gap in the part numbers is rejected", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [store.partSize, store.partSize, 3]);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[0], parts[2]] as never), "INVALID_ARGUMENT");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[1], parts[2]] as never), "INVALID_ARGUMENT");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, [parts[0], parts[0]] as never), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("multipart 5: completing with no parts is rejected", async (store, p) => {
    const uploadId = await store.initMultipart(`${p}obj`);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, []), "INVALID_ARGUMENT");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("a malformed part list is InvalidArgumentError and keeps the upload open", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    const [part] = parts as [{ partNumber: number; etag: string }];
    for (const bad of [
      [null],
      ["1"],
      [{ partNumber: "1", etag: part.etag }],
      [{ partNumber: 1, etag: 5 }],
      [{ partNumber: 1 }],
      "parts",
    ]) {
      await rejectsWith(
        store.completeMultipart(`${p}obj`, uploadId, bad as never),
        "INVALID_ARGUMENT",
        JSON.stringify(bad),
      );
    }
    assert.equal(await store.head(`${p}obj`), null);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    assert.equal((await store.head(`${p}obj`))?.size, 9);
  });

  test("multipart 6: completing a completed upload is NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "NOT_FOUND");
  });

  test("multipart 7: putPart after complete is NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.completeMultipart(`${p}obj`, uploadId, parts);
    await rejectsWith(store.putPart(`${p}obj`, uploadId, 2, "late"), "NOT_FOUND");
    assert.equal((await store.head(`${p}obj`))?.size, 9);
  });

  test("multipart 8: abort is idempotent, also for unknown uploads", async (store, p) => {
    const { uploadId } = await upload(store, `${p}obj`, [9]);
    await store.abortMultipart(`${p}obj`, uploadId);
    await store.abortMultipart(`${p}obj`, uploadId);
    await store.abortMultipart(`${p}obj`, "no-such-upload");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("multipart 9: putPart and complete after abort are NotFoundError", async (store, p) => {
    const { uploadId, parts } = await upload(store, `${p}obj`, [9]);
    await store.abortMultipart(`${p}obj`, uploadId);
    await rejectsWith(store.putPart(`${p}obj`, uploadId, 1, "again"), "NOT_FOUND");
    await rejectsWith(store.completeMultipart(`${p}obj`, uploadId, parts), "NOT_FOUND");
    assert.equal(await store.head(`${p}obj`), null);
  });

  test("multipart 10: a non-final part smaller than partSize is rejected", async (store, p) => {
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

  test("a part whose body fails midway or differs from its contentLength is refused and keeps the part stored before", async (store, p) => {
    const uploadId = await store.initMultipart(`${p}obj`);
    const kept = await store.putPart(`${p}obj`, uploadId, 1, "first");
    const failing = async function* () {
      yield Buffer.alloc(1000, 1);
      await Promise.resolve();
      throw new Error("the part failed");
    };
    for (const options of [{}, { contentLength: 5000 }]) {
      await assert.rejects(store.putPart(`${p}obj`, uploadId, 1, Readable.from(failing()), options), /the part failed/);
    }
    for (const contentLength of [2, 4]) {
      await rejectsWith(
        store.putPart(`${p}obj`, uploadId, 1, Readable.from([Buffer.from("abc")]), { contentLength }),
        "INVALID_ARGUMENT",
        `contentLength ${contentLength}`,
      );
      await rejectsWith(
        store.putPart(`${p}obj`, uploadId, 1, Buffer.from("abc"), { contentLength }),
        "INVALID_ARGUMENT",
        `bytes with contentLength ${contentLength}`,
      );
    }
    for (const contentLength of [-1, 1.5, Number.NaN]) {
      await rejectsWith(store.putPart(`${p}obj`, uploadId, 1, "abc", { contentLength }), "INVALID_ARGUMENT");
    }
    await store.completeMultipart(`${p}obj`, uploadId, [{ partNumber: 1, etag: kept.etag }]);
    assert.equal((await bytesOf(store, `${p}obj`)).toString(), "first");
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
