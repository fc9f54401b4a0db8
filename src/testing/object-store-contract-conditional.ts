import { strict as assert } from "node:assert";
import { isStoreError } from "../errors.js";
import type { ObjectStore } from "../objects/index.js";
import { type Register, readAll, rejectsWith, text } from "./object-store-contract-helpers.js";

/** Starts a one-part upload of `body` (a single part is final, so any size meets `partSize`). */
async function onePartUpload(store: ObjectStore, key: string, body: string) {
  const uploadId = await store.initMultipart(key);
  const { etag } = await store.putPart(key, uploadId, 1, body);
  return { uploadId, parts: [{ partNumber: 1, etag }] };
}

export function registerConditionalCases(test: Register): void {
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

  test('completeMultipart with ifNoneMatch "*" refuses an existing object and leaves it unchanged', async (store, p) => {
    const existing = await store.put(`${p}k`, "existing");
    const { uploadId, parts } = await onePartUpload(store, `${p}k`, "multipart");
    await rejectsWith(store.completeMultipart(`${p}k`, uploadId, parts, { ifNoneMatch: "*" }), "CONFLICT");
    assert.equal(await text(store, `${p}k`), "existing");
    assert.equal((await store.head(`${p}k`))?.etag, existing.etag);
    await store.abortMultipart(`${p}k`, uploadId);
    const fresh = await onePartUpload(store, `${p}new`, "created");
    await store.completeMultipart(`${p}new`, fresh.uploadId, fresh.parts, { ifNoneMatch: "*" });
    assert.equal(await text(store, `${p}new`), "created");
  });

  test("completeMultipart with a stale ifMatch conflicts and keeps the upload open; the current etag completes it", async (store, p) => {
    const v1 = await store.put(`${p}k`, "v1");
    const v2 = await store.put(`${p}k`, "v2", { ifMatch: v1.etag });
    const { uploadId, parts } = await onePartUpload(store, `${p}k`, "multipart");
    await rejectsWith(store.completeMultipart(`${p}k`, uploadId, parts, { ifMatch: v1.etag }), "CONFLICT");
    assert.equal(await text(store, `${p}k`), "v2");
    const info = await store.completeMultipart(`${p}k`, uploadId, parts, { ifMatch: v2.etag });
    assert.equal(await text(store, `${p}k`), "multipart");
    assert.equal((await store.head(`${p}k`))?.etag, info.etag);
  });

  test("completeMultipart with ifMatch on a missing object conflicts and creates nothing", async (store, p) => {
    const other = await store.put(`${p}other`, "x");
    const { uploadId, parts } = await onePartUpload(store, `${p}k`, "multipart");
    await rejectsWith(store.completeMultipart(`${p}k`, uploadId, parts, { ifMatch: other.etag }), "CONFLICT");
    assert.equal(await store.head(`${p}k`), null);
    await store.abortMultipart(`${p}k`, uploadId);
  });

  test("a put landing between initMultipart and completeMultipart is detected", async (store, p) => {
    const base = await store.put(`${p}k`, "base");
    const { uploadId, parts } = await onePartUpload(store, `${p}k`, "multipart");
    const intruder = await store.put(`${p}k`, "intruder");
    await rejectsWith(store.completeMultipart(`${p}k`, uploadId, parts, { ifMatch: base.etag }), "CONFLICT");
    assert.equal(await text(store, `${p}k`), "intruder");
    assert.equal((await store.head(`${p}k`))?.etag, intruder.etag);
    await store.abortMultipart(`${p}k`, uploadId);

    const created = await onePartUpload(store, `${p}new`, "multipart");
    await store.put(`${p}new`, "first");
    await rejectsWith(
      store.completeMultipart(`${p}new`, created.uploadId, created.parts, { ifNoneMatch: "*" }),
      "CONFLICT",
    );
    assert.equal(await text(store, `${p}new`), "first");
    await store.abortMultipart(`${p}new`, created.uploadId);
  });

  test("concurrent conditional completions over one etag: exactly one wins", async (store, p) => {
    const base = await store.put(`${p}k`, "base");
    const uploads = await Promise.all(
      Array.from({ length: 6 }, (_, i) => onePartUpload(store, `${p}k`, `upload-${i}`)),
    );
    const results = await Promise.allSettled(
      uploads.map((u) => store.completeMultipart(`${p}k`, u.uploadId, u.parts, { ifMatch: base.etag })),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1);
    for (const r of results)
      if (r.status === "rejected") assert.ok(isStoreError(r.reason, "CONFLICT"), String(r.reason));
    assert.equal(await text(store, `${p}k`), `upload-${winners[0]}`);
    for (const u of uploads) await store.abortMultipart(`${p}k`, u.uploadId);
  });
}
