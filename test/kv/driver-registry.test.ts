import { describe, expect, it, vi } from "vitest";
import { DuplicateDriverError, UnknownDriverError } from "../../src/errors.js";
import { drivers, MemoryStore, openStore, registerDriver, type Store } from "../../src/kv/index.js";

describe("kv driver registry", () => {
  it("registers memory, postgres and sqlite by default, sorted", () => {
    expect(drivers()).toEqual(expect.arrayContaining(["memory", "postgres", "sqlite"]));
    expect(drivers()).toEqual([...drivers()].sort());
  });

  it("refuses a duplicate name, including the built-ins, and keeps the first factory", async () => {
    const factory = async (): Promise<Store> => new MemoryStore();
    expect(() => registerDriver("memory", factory)).toThrow(DuplicateDriverError);
    registerDriver("registry-test-dup", factory);
    expect(() => registerDriver("registry-test-dup", async () => Promise.reject(new Error("second")))).toThrow(
      DuplicateDriverError,
    );
    const store = await openStore("registry-test-dup", "");
    await store.ping();
    await store.close();
  });

  it("opens a custom driver with its dsn and lists it in sorted order", async () => {
    const seen: string[] = [];
    registerDriver("registry-test-custom", async (dsn) => {
      seen.push(dsn);
      return new MemoryStore();
    });
    const store = await openStore("registry-test-custom", "some://dsn");
    await store.close();
    expect(seen).toEqual(["some://dsn"]);
    const names = drivers();
    expect(names).toContain("registry-test-custom");
    expect(names).toEqual([...names].sort());
  });

  it("rejects an unknown driver naming the registered ones", async () => {
    const err = await openStore("no-such-driver", "").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownDriverError);
    expect((err as Error).message).toContain("memory, postgres");
  });

  it("rethrows a factory's error unchanged", async () => {
    const boom = new Error("factory failed");
    registerDriver("registry-test-failing", async () => Promise.reject(boom));
    await expect(openStore("registry-test-failing", "")).rejects.toBe(boom);
  });

  it("rejects empty names and non-function factories", () => {
    expect(() => registerDriver("", async () => new MemoryStore())).toThrow(/non-empty name/);
    expect(() => registerDriver("registry-test-bad", "nope" as never)).toThrow(/factory function/);
    expect(drivers()).not.toContain("registry-test-bad");
  });

  it("shares one registry when the module is loaded twice", async () => {
    registerDriver("registry-test-shared", async () => new MemoryStore());
    vi.resetModules();
    const copy = await import("../../src/kv/driver-registry.js");
    expect(copy.drivers).not.toBe(drivers);
    expect(copy.drivers()).toEqual(drivers());
    expect(() => copy.registerDriver("registry-test-shared", async () => new MemoryStore())).toThrow(
      /already registered/,
    );
  });
});
