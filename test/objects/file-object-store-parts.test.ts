import { cpSync, existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isStoreError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { useTempDir } from "../support/temp-dir.js";

const base = useTempDir("storeroom-objects-parts-");
let counter = 0;
const freshRoot = () => join(base, `root-${++counter}`);
const PART = 4;

async function bytesOf(store: FileObjectStore, key: string): Promise<Buffer | null> {
  const got = await store.get(key);
  if (!got) return null;
  const chunks: Buffer[] = [];
  for await (const c of got.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A streamed body of `bytes`, in chunks of `chunk`, failing after `failAfter` chunks when given. */
async function* streamOf(bytes: Buffer, chunk: number, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0, n = 0; i < bytes.length; i += chunk, n++) {
    if (n === failAfter) throw new Error("client went away");
    yield bytes.subarray(i, i + chunk);
  }
  if (failAfter !== undefined) throw new Error("client went away");
}

function uploadFolder(root: string, uploadId: string): string {
  return join(root, "multipart", uploadId);
}

describe("FileObjectStore multipart layout", () => {
  it("parts sent once in order are written once: completion publishes the assembly file itself", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root, partSize: PART });
    const uploadId = await store.initMultipart("m", { contentType: "text/plain" });
    const parts = [];
    for (const [n, body] of ["abcd", "efgh", "ij"].entries()) {
      parts.push({ partNumber: n + 1, etag: (await store.putPart("m", uploadId, n + 1, body)).etag });
    }
    const assembly = statSync(join(uploadFolder(root, uploadId), "data"));
    const info = await store.completeMultipart("m", uploadId, parts);
    const published = statSync(join(root, "objects", "m.obj"));
    expect(published.ino).toBe(assembly.ino);
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdefghij");
    expect(info).toMatchObject({ size: 10, contentType: "text/plain" });
    expect(info.etag).toMatch(/^[0-9a-f]{64}-3$/);
    expect((await store.head("m"))?.etag).toBe(info.etag);
    expect(existsSync(uploadFolder(root, uploadId))).toBe(false);
    await store.close();
  });

  it("a re-sent part never touches the accepted bytes in place, even when the re-send fails midway", async () => {
    const store = new FileObjectStore({ root: freshRoot(), partSize: PART });
    const uploadId = await store.initMultipart("m");
    const p1 = await store.putPart("m", uploadId, 1, "abcd");
    const p2 = await store.putPart("m", uploadId, 2, "ef");
    await expect(store.putPart("m", uploadId, 1, streamOf(Buffer.from("WXYZ"), 1, 2))).rejects.toThrow(
      "client went away",
    );
    await store.completeMultipart("m", uploadId, [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
    ]);
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdef");
    await store.close();
  });

  it("a re-sent part gets a new etag (even with the same bytes) and is copied into place by completion", async () => {
    const store = new FileObjectStore({ root: freshRoot(), partSize: PART });
    const uploadId = await store.initMultipart("m");
    const first = await store.putPart("m", uploadId, 1, "abcd");
    const p2 = await store.putPart("m", uploadId, 2, "ef");
    const again = await store.putPart("m", uploadId, 1, streamOf(Buffer.from("abcd"), 3));
    expect(again.etag).not.toBe(first.etag);
    await expect(
      store.completeMultipart("m", uploadId, [
        { partNumber: 1, etag: first.etag },
        { partNumber: 2, etag: p2.etag },
      ]),
    ).rejects.toSatisfy((err) => isStoreError(err, "INVALID_ARGUMENT"));
    await store.completeMultipart("m", uploadId, [
      { partNumber: 1, etag: again.etag },
      { partNumber: 2, etag: p2.etag },
    ]);
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdef");
    await store.close();
  });

  it("parts larger than partSize (buffers and streams) are stored apart and assembled by copying", async () => {
    const store = new FileObjectStore({ root: freshRoot(), partSize: PART });
    const uploadId = await store.initMultipart("m");
    const p1 = await store.putPart("m", uploadId, 1, streamOf(Buffer.from("abcdefg"), 2));
    const p2 = await store.putPart("m", uploadId, 2, Buffer.from("hijklm"));
    const p3 = await store.putPart("m", uploadId, 3, "no");
    expect(p1.size).toBe(7);
    expect(p2.size).toBe(6);
    await store.completeMultipart("m", uploadId, [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
      { partNumber: 3, etag: p3.etag },
    ]);
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdefghijklmno");
    await store.close();
  });

  it("locks left by a crashed writer or completion only send the upload down the copying path", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root, partSize: PART });
    const uploadId = await store.initMultipart("m");
    const p1 = await store.putPart("m", uploadId, 1, "abcd");
    writeFileSync(join(uploadFolder(root, uploadId), "2.lock"), "");
    writeFileSync(join(uploadFolder(root, uploadId), "completing"), "");
    const p2 = await store.putPart("m", uploadId, 2, "efgh");
    const p3 = await store.putPart("m", uploadId, 3, "i");
    const info = await store.completeMultipart(
      "m",
      uploadId,
      [p1, p2, p3].map((p, i) => ({ partNumber: i + 1, ...p })),
    );
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdefghi");
    expect(info.size).toBe(9);
    await store.close();
  });

  it("a completion that published and stopped before removing the upload is finished by a retry", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root, partSize: PART });
    const uploadId = await store.initMultipart("m");
    const parts = [];
    for (const [n, body] of ["abcd", "ef"].entries()) {
      parts.push({ partNumber: n + 1, etag: (await store.putPart("m", uploadId, n + 1, body)).etag });
    }
    // What a crash right after the rename leaves: the folder with its records, the assembly file gone.
    const saved = join(base, `saved-${counter}`);
    cpSync(uploadFolder(root, uploadId), saved, { recursive: true });
    const info = await store.completeMultipart("m", uploadId, parts);
    cpSync(saved, uploadFolder(root, uploadId), { recursive: true });
    rmSync(join(uploadFolder(root, uploadId), "data"));
    expect(await store.completeMultipart("m", uploadId, parts)).toMatchObject({ etag: info.etag, size: 6 });
    expect(existsSync(uploadFolder(root, uploadId))).toBe(false);
    expect((await bytesOf(store, "m"))?.toString()).toBe("abcdef");
    await store.close();
  });

  it("writers of other parts racing a completion never change the published object", async () => {
    for (let round = 0; round < 15; round++) {
      const store = new FileObjectStore({ root: freshRoot(), partSize: PART });
      const uploadId = await store.initMultipart("m");
      const parts = [];
      for (const [n, body] of ["abcd", "efgh", "ij"].entries()) {
        parts.push({ partNumber: n + 1, etag: (await store.putPart("m", uploadId, n + 1, body)).etag });
      }
      const racers = [
        store.putPart("m", uploadId, 4, "ZZZZ"),
        store.putPart("m", uploadId, 5, streamOf(Buffer.from("YYYY"), 1)),
        store.putPart("m", uploadId, 2, "XXXX"),
      ];
      const [completed, ...raced] = await Promise.allSettled([
        store.completeMultipart("m", uploadId, parts),
        ...racers,
      ]);
      for (const r of raced) if (r.status === "rejected") expect(isStoreError(r.reason, "NOT_FOUND")).toBe(true);
      if (completed.status === "fulfilled") {
        expect((await bytesOf(store, "m"))?.toString()).toBe("abcdefghij");
      } else {
        // The re-send of part 2 landed before completion checked the etags.
        expect(isStoreError(completed.reason, "INVALID_ARGUMENT")).toBe(true);
        const resent = raced[2] as PromiseFulfilledResult<{ etag: string }>;
        await store.completeMultipart("m", uploadId, [
          parts[0],
          { partNumber: 2, etag: resent.value.etag },
          parts[2],
        ] as never);
        expect((await bytesOf(store, "m"))?.toString()).toBe("abcdXXXXij");
      }
      await store.close();
    }
  });

  it("whatever the mix of in-place, re-sent, oversized and failing parts, completion yields exactly the accepted parts", async () => {
    const write = fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      size: fc.integer({ min: 1, max: 7 }),
      fill: fc.integer({ min: 0, max: 255 }),
      stream: fc.boolean(),
      fail: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        // Batches of writes run concurrently; a stale lock file may appear before any batch.
        fc.array(fc.array(write, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
        async (batches, partCount, staleBefore) => {
          const root = freshRoot();
          const store = new FileObjectStore({ root, partSize: PART });
          const uploadId = await store.initMultipart("k");
          const content = new Map<string, Buffer>();
          const accepted = new Map<number, string[]>();
          for (const [index, batch] of batches.entries()) {
            if (index === staleBefore) writeFileSync(join(uploadFolder(root, uploadId), `${(index % 4) + 1}.lock`), "");
            await Promise.all(
              batch.map(async (w) => {
                const bytes = Buffer.alloc(w.size, w.fill);
                const body = w.stream || w.fail ? streamOf(bytes, 2, w.fail ? 1 : undefined) : bytes;
                try {
                  const { etag, size } = await store.putPart("k", uploadId, w.n, body);
                  expect(w.fail).toBe(false);
                  expect(size).toBe(w.size);
                  content.set(etag, bytes);
                  accepted.set(w.n, [...(accepted.get(w.n) ?? []), etag]);
                } catch (err) {
                  expect(w.fail).toBe(true);
                  expect((err as Error).message).toBe("client went away");
                }
              }),
            );
          }
          const numbers = Array.from({ length: partCount }, (_, i) => i + 1);
          const sizeOf = (etag: string) => (content.get(etag) as Buffer).length;
          // The current etag of each part is one of its accepted ones: completion tells which.
          const candidates = numbers.map((n) => accepted.get(n) ?? []);
          const valid = candidates.every(
            (list, i) => list.length > 0 && (i === partCount - 1 || list.every((e) => sizeOf(e) >= PART)),
          );
          let completed = false;
          const choose = (i: number, chosen: string[]): Promise<void> | undefined => {
            if (i === partCount) {
              return store
                .completeMultipart(
                  "k",
                  uploadId,
                  chosen.map((etag, j) => ({ partNumber: j + 1, etag })),
                )
                .then(
                  async (info) => {
                    completed = true;
                    expect(chosen.slice(0, -1).every((e) => sizeOf(e) >= PART)).toBe(true);
                    expect(await bytesOf(store, "k")).toEqual(
                      Buffer.concat(chosen.map((e) => content.get(e) as Buffer)),
                    );
                    expect(info.size).toBe(chosen.reduce((s, e) => s + sizeOf(e), 0));
                  },
                  (err) => expect(isStoreError(err, "INVALID_ARGUMENT")).toBe(true),
                );
            }
            return (async () => {
              for (const etag of new Set(candidates[i])) {
                if (completed) return;
                await choose(i + 1, [...chosen, etag]);
              }
            })();
          };
          await choose(0, []);
          // Completion may also succeed when a too-small write of a part was replaced by a full one.
          if (valid) expect(completed).toBe(true);
          await store.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});
