import { strict as assert } from "node:assert";
import { Readable } from "node:stream";
import { chunks, type Register, rejectsWith, text } from "./object-store-contract-helpers.js";

/**
 * Bodies that fail midway or differ from their declared `contentLength`: refused, nothing
 * written. A server that stores the bytes of an aborted request (s3rver does) fails this group.
 */
export function registerBodyCases(test: Register): void {
  test("a streamed body that fails midway rejects with its error and writes nothing, with and without contentLength", async (store, p) => {
    const failing = async function* () {
      yield Buffer.alloc(1000, 1);
      await Promise.resolve();
      throw new Error("the body failed");
    };
    await store.put(`${p}kept`, "old");
    for (const options of [{}, { contentLength: 5000 }]) {
      await assert.rejects(store.put(`${p}new`, failing(), options), /the body failed/);
      await assert.rejects(store.put(`${p}kept`, Readable.from(failing()), options), /the body failed/);
    }
    assert.equal(await store.head(`${p}new`), null);
    assert.equal(await text(store, `${p}kept`), "old");
  });

  test("a body of another length than its contentLength is InvalidArgumentError and writes nothing", async (store, p) => {
    await store.put(`${p}kept`, "old");
    const bodies = [
      () => Readable.from([Buffer.from("abc")]),
      () => chunks(3, 1000),
      () => Buffer.from("abc"),
      () => "abc",
    ];
    for (const body of bodies) {
      for (const contentLength of [2, 4, 2999]) {
        for (const key of [`${p}new`, `${p}kept`]) {
          await rejectsWith(
            store.put(key, body(), { contentLength }),
            "INVALID_ARGUMENT",
            `put ${key} with contentLength ${contentLength}`,
          );
        }
      }
    }
    assert.equal(await store.head(`${p}new`), null);
    assert.equal(await text(store, `${p}kept`), "old");
  });
}
