import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClosedError } from "../../src/errors.js";
import { MemoryStore } from "../../src/kv/index.js";
import { compareKeys } from "../../src/kv/key-order.js";
import { RwGate } from "../../src/kv/rw-gate.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("memory kv driver", () => {
  it("orders keys by UTF-8 bytes, not UTF-16 code units", () => {
    expect("\u{10000}" < "\uffff").toBe(true);
    expect(compareKeys("\uffff", "\u{10000}")).toBeLessThan(0);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareKeys(a, b))).toBe(expected);
      }),
    );
  });

  it("runs views side by side but never alongside an update", async () => {
    const store = new MemoryStore();
    const log: string[] = [];
    const view = (name: string) =>
      store.view(async () => {
        log.push(`${name}+`);
        await tick();
        log.push(`${name}-`);
      });
    const v1 = view("v1");
    const v2 = view("v2");
    const update = store.update(async () => {
      log.push("u+");
      await tick();
      log.push("u-");
    });
    const v3 = view("v3");
    await Promise.all([v1, v2, update, v3]);
    const u = log.indexOf("u+");
    expect(log[u + 1]).toBe("u-");
    expect(log.slice(0, 2).sort()).toEqual(["v1+", "v2+"]);
    expect(log.indexOf("v3+")).toBeGreaterThan(log.indexOf("u-"));
    await store.close();
  });

  it("close waits for an admitted update, then rejects new work", async () => {
    const store = new MemoryStore();
    let finished = false;
    const running = store.update(async (tx) => {
      await tick();
      await tx.put("ns", "k", new Uint8Array([1]));
      finished = true;
    });
    await store.close();
    expect(finished).toBe(true);
    await running;
    await expect(store.view(async () => 1)).rejects.toBeInstanceOf(ClosedError);
  });
});

describe("RwGate", () => {
  it("does not let a stream of readers starve a waiting writer", async () => {
    const gate = new RwGate();
    await gate.read();
    const order: string[] = [];
    const writer = gate.write().then(() => order.push("w"));
    const reader = gate.read().then(() => order.push("r"));
    expect(gate.tryRead()).toBe(false);
    gate.releaseRead();
    await writer;
    expect(order).toEqual(["w"]);
    gate.releaseWrite();
    await reader;
    expect(order).toEqual(["w", "r"]);
    gate.releaseRead();
    expect(gate.tryRead()).toBe(true);
  });
});
