import { describe, expect, it } from "vitest";
import { type Clock, ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { runObjectStoreContract } from "../../src/testing/object-store-contract.js";

runObjectStoreContract(() => new MemoryObjectStore({ partSize: 1024 }), {
  describe,
  it,
  name: "MemoryObjectStore contract",
});

describe("MemoryObjectStore", () => {
  it("defaults to 64 KiB parts and unlimited part count", async () => {
    const store = new MemoryObjectStore();
    expect(store.partSize).toBe(64 * 1024);
    expect(store.maxPartCount).toBe(Number.POSITIVE_INFINITY);
    await store.close();
  });

  it("etags are the SHA-256 hex of the content and lastModified comes from the clock", async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = new MemoryObjectStore({ clock });
    const { etag } = await store.put("k", "abc");
    expect(etag).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect((await store.head("k"))?.lastModified).toBe(1_700_000_000_000);
    await store.close();
  });

  it("rejects a non-positive partSize, maxPartCount and a clock without now(), naming the option", () => {
    expect(() => new MemoryObjectStore({ partSize: 0 })).toThrow(/^partSize must be a positive integer, got 0/);
    expect(() => new MemoryObjectStore({ maxPartCount: 1.5 })).toThrow(/^maxPartCount must be a positive integer/);
    expect(() => new MemoryObjectStore({ clock: {} as Clock })).toThrow(/^clock must be a Clock/);
    expect(() => new MemoryObjectStore({ clock: {} as Clock })).toThrow(InvalidArgumentError);
  });

  it("list returns pages of 1000 by default, with a cursor to the rest", async () => {
    const store = new MemoryObjectStore();
    await Promise.all(Array.from({ length: 1001 }, (_, i) => store.put(`l/${String(i).padStart(4, "0")}`, "x")));
    const first = await store.list("l/");
    expect(first.objects).toHaveLength(1000);
    expect(first.cursor).toBeDefined();
    const rest = await store.list("l/", { cursor: first.cursor });
    expect(rest.objects.map((o) => o.key)).toEqual(["l/1000"]);
    expect(rest.cursor).toBeUndefined();
    await store.close();
  });

  it("a get stream is a snapshot: a later put does not change it", async () => {
    const store = new MemoryObjectStore();
    await store.put("k", "old");
    const got = await store.get("k");
    await store.put("k", "new");
    const chunks: Buffer[] = [];
    for await (const c of got?.body ?? []) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("old");
    await store.close();
  });
});
