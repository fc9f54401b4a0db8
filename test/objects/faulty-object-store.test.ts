import { describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { runObjectStoreContract } from "../../src/testing/object-store-contract.js";
import { FaultyObjectStore, InjectedFault } from "../support/faulty-object-store.js";

// With no faults armed the wrapper must be transparent.
runObjectStoreContract(() => new FaultyObjectStore(new MemoryObjectStore({ partSize: 1024 })), {
  describe,
  it,
  name: "FaultyObjectStore without faults (contract)",
});

describe("FaultyObjectStore", () => {
  it("fails the next N calls before they reach the store, then recovers", async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    store.failNext("put", { times: 2 });
    await expect(store.put("k", "1")).rejects.toBeInstanceOf(InjectedFault);
    await expect(store.put("k", "2")).rejects.toBeInstanceOf(InjectedFault);
    expect(await store.head("k")).toBeNull();
    await store.put("k", "3");
    expect((await store.head("k"))?.size).toBe(1);
    expect(store.count("put")).toBe(3);
    expect(store.calls.filter((c) => c.failed)).toHaveLength(2);
    expect(store.pendingFaults).toBe(0);
  });

  it('"after" performs the call and then reports failure (a lost response)', async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    store.failNext("delete", { when: "after", error: () => new Error("socket hang up") });
    await store.put("k", "v");
    await expect(store.delete("k")).rejects.toThrow("socket hang up");
    expect(await store.inner.head("k")).toBeNull();
  });

  it("matches by key and leaves other calls alone; clearFaults disarms", async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    store.failNext("putPart", { match: (key) => key.startsWith("bad/"), times: 5 });
    const good = await store.initMultipart("good/x");
    await store.putPart("good/x", good, 1, "x");
    const bad = await store.initMultipart("bad/x");
    await expect(store.putPart("bad/x", bad, 1, "x")).rejects.toBeInstanceOf(InjectedFault);
    expect(store.pendingFaults).toBe(4);
    store.clearFaults();
    await store.putPart("bad/x", bad, 1, "x");
  });

  it("times: Infinity keeps failing until clearFaults; succeeded counts only calls no fault failed", async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    await store.put("a", "1");
    await store.put("b", "2");
    store.failNext("delete", { times: Infinity, error: () => new Error("503") });
    for (let i = 0; i < 3; i++) await expect(store.delete("a")).rejects.toThrow("503");
    expect(store.pendingFaults).toBe(Infinity);
    expect(await store.head("a")).not.toBeNull();
    store.clearFaults();
    await store.delete("a");
    await store.delete("b");
    await store.delete("b");
    expect(store.count("delete")).toBe(6);
    expect(store.succeeded("delete")).toBe(3);
    expect(store.succeeded("delete", "a")).toBe(1);
    expect(store.succeeded("delete", "b")).toBe(2);
    expect(store.succeeded("put", "a")).toBe(1);
  });
});

describe("FaultyObjectStore.beforeCall", () => {
  it("can hold a call until the test releases it", async () => {
    const store = new FaultyObjectStore(new MemoryObjectStore());
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    store.beforeCall = (method, key) => (method === "put" && key === "slow" ? gate : undefined);
    const slow = store.put("slow", "late");
    await store.put("fast", "early");
    expect(await store.head("slow")).toBeNull();
    release();
    await slow;
    expect((await store.head("slow"))?.size).toBe(4);
  });
});
