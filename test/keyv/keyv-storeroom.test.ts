import Keyv from "keyv";
import Keyv6 from "keyv6";
import { expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { KeyvStoreroom } from "../../src/keyv/index.js";
import type { Database } from "../../src/sql/index.js";
import { StateStore } from "../../src/state/index.js";
import { forEachStateBackend } from "../support/state-backends.js";

const START = Date.parse("2026-01-01T00:00:00Z");
const clock = new ManualClock(START);
let n = 0;
const fresh = (prefix: string) => `${prefix}-${n++}`;

forEachStateBackend(
  "KeyvStoreroom",
  (shared) => {
    it("keeps Keyv's TTL as the entry's own expiry on the store's clock, so the row expires natively", async () => {
      const ns = fresh("ttl");
      const keyv = new Keyv({ store: new KeyvStoreroom({ state: shared.state }), namespace: ns });
      await keyv.set("short", "v", 1000);
      await keyv.set("forever", "w");
      const entry = await shared.state.getEntry(ns, `${ns}:short`);
      expect(entry?.expiresAt).toBe(clock.now() + 1000);
      expect((await shared.state.getEntry(ns, `${ns}:forever`))?.expiresAt).toBeNull();
      clock.advance(1001);
      // The state store itself no longer returns it, whatever Keyv's own check says.
      expect(await shared.state.getEntry(ns, `${ns}:short`)).toBeNull();
      expect(await keyv.get("short")).toBeUndefined();
      expect(await keyv.get("forever")).toBe("w");
    });

    it("stores an entry whose TTL reaches past the latest expiry the store can record, keeping it until then", async () => {
      const ns = fresh("far");
      const keyv = new Keyv({ store: new KeyvStoreroom({ state: shared.state }), namespace: ns });
      expect(await keyv.set("far", "v", Number.MAX_SAFE_INTEGER)).toBe(true);
      expect(await keyv.get("far")).toBe("v");
      expect((await shared.state.getEntry(ns, `${ns}:far`))?.expiresAt).toBe(Number.MAX_SAFE_INTEGER - 2 ** 32);
      const store = new KeyvStoreroom({ state: shared.state });
      store.namespace = ns;
      expect(await store.setMany([{ key: "many", value: "w", ttl: Number.MAX_SAFE_INTEGER }])).toEqual([true]);
      expect(await store.get("many")).toBe("w");
    });

    it("clears only its namespace's group, and groupPrefix keeps Keyv apart from the application's groups", async () => {
      const ns = fresh("app");
      await shared.state.set(ns, "mine", "application data");
      const plain = new Keyv({ store: new KeyvStoreroom({ state: shared.state }), namespace: ns });
      const prefixed = new Keyv({
        store: new KeyvStoreroom({ state: shared.state, groupPrefix: "keyv/" }),
        namespace: ns,
      });
      await prefixed.set("k", "cached");
      await prefixed.clear();
      expect(await shared.state.get(ns, "mine")).toBe("application data");
      await plain.set("k", "cached");
      expect(await shared.state.get(`keyv/${ns}`, `${ns}:k`).catch(() => "gone")).toBe("gone");
      await plain.clear();
      expect(await shared.state.getEntry(ns, "mine")).toBeNull();
    });

    it("writes setMany in one batch: an entry Keyv could not serialize leaves nothing written", async () => {
      const ns = fresh("many");
      const store = new KeyvStoreroom({ state: shared.state });
      store.namespace = ns;
      const before = await shared.state.version();
      await expect(
        store.setMany([
          { key: "a", value: "1" },
          { key: "b", value: { not: "serialized" } },
        ]),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await shared.state.version()).toBe(before);
      expect(
        await store.setMany([
          { key: "a", value: "1" },
          { key: "b", value: "2", ttl: 500 },
        ]),
      ).toEqual([true, true]);
      expect(await shared.state.version()).toBe(before + 2);
      expect(await store.getMany(["a", "b", "c"])).toEqual(["1", "2", undefined]);
      expect(await store.hasMany(["a", "c"])).toEqual([true, false]);
      expect(await store.deleteMany(["a", "c"])).toBe(false);
      expect(await store.deleteMany(["b"])).toBe(true);
      expect(await store.getMany(["a", "b"])).toEqual([undefined, undefined]);
    });

    it("deleteMany of no keys answers true and writes nothing, as Keyv does over its own in-memory store", async () => {
      const ns = fresh("none");
      const store = new KeyvStoreroom({ state: shared.state });
      store.namespace = ns;
      const before = await shared.state.version();
      const keyv = new Keyv({ store: new KeyvStoreroom({ state: shared.state }), namespace: ns });
      const inMemory = new Keyv({ namespace: ns });
      expect(await inMemory.deleteMany([])).toBe(true);
      expect(await store.deleteMany([])).toBe(true);
      expect(await keyv.deleteMany([])).toBe(true);
      expect(await keyv.delete([])).toBe(true);
      expect(await shared.state.version()).toBe(before);
    });

    it("applies writes of one key in the order they were called, across adapters of one state store, even when the first is slow", async () => {
      // The real database, with one chosen transaction held back: the write called first
      // finishes last unless the adapter orders them.
      const database = shared.state.config.database as Database;
      let hold: Promise<void> | undefined;
      const held = new Proxy(database, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (typeof value !== "function") return value;
          if (prop !== "transaction") return value.bind(target);
          return async (...args: unknown[]) => {
            const wait = hold;
            hold = undefined;
            if (wait !== undefined) await wait;
            return value.apply(target, args);
          };
        },
      });
      const state = await StateStore.open({ database: held, clock, changePollIntervalMs: 0, purgeIntervalMs: 0 });
      try {
        const ns = fresh("order");
        const first = new KeyvStoreroom({ state, defaultNamespace: ns });
        const second = new KeyvStoreroom({ state, defaultNamespace: ns });
        let release = () => {};
        const armed = () => {
          hold = new Promise<void>((resolve) => {
            release = resolve;
          });
        };

        await first.set("k", "old");
        armed();
        const deleted = first.delete("k");
        const set = second.set("k", "new");
        const other = second.set("other", "free");
        // A write of another key does not wait for the held one.
        await other;
        release();
        expect(await deleted).toBe(true);
        await set;
        expect(await second.get("k")).toBe("new");

        // clear waits for the writes called before it; the writes called after it wait for it.
        await first.set("before", "x");
        armed();
        const early = first.set("before", "y");
        const cleared = second.clear();
        const late = first.set("after", "z");
        release();
        await Promise.all([early, cleared, late]);
        expect(await first.get("before")).toBeUndefined();
        expect(await first.get("after")).toBe("z");
      } finally {
        await state.close();
      }
    });

    it('without a Keyv namespace uses the group "keyv"; iterates in key order; a non-string writes nothing; writes are state changes; never closes the store', async () => {
      const prefix = `${fresh("bare")}/`;
      const store = new KeyvStoreroom({ state: shared.state, groupPrefix: prefix });
      const events: string[] = [];
      const off = shared.state.onChange((e) => {
        if (e.group === `${prefix}keyv`) events.push(`${e.type} ${e.key}`);
      });
      try {
        for (const key of ["b", "c", "a"]) await store.set(key, `"${key}"`);
        expect((await shared.state.getEntry(`${prefix}keyv`, "a"))?.value).toBe('"a"');
        const before = await shared.state.version();
        await expect(store.set("d", { raw: true })).rejects.toBeInstanceOf(InvalidArgumentError);
        expect(await shared.state.version()).toBe(before);
        await store.set("short", "x", 1_000);
        clock.advance(1_001);
        const listed: string[] = [];
        for await (const [key] of store.iterator()) listed.push(key);
        expect(listed).toEqual(["a", "b", "c"]);
        expect(await store.delete("a")).toBe(true);
        await vi.waitFor(() => expect(events).toContain("delete a"), { timeout: 10_000 });
        expect(events.slice(0, 3)).toEqual(["set b", "set c", "set a"]);
      } finally {
        off();
      }
      // Keyv's disconnect leaves the state store to its owner.
      const keyv = new Keyv({ store: new KeyvStoreroom({ state: shared.state }), namespace: fresh("disc") });
      await keyv.set("k", "v");
      await keyv.disconnect();
      expect(await keyv.get("k")).toBe("v");
      expect(await shared.state.version()).toBeGreaterThan(0);
    });

    it("refuses a missing state store and bad options naming them", () => {
      expect(() => new KeyvStoreroom({} as never)).toThrow(/^state must be a StateStore/);
      expect(() => new KeyvStoreroom({ state: shared.state, defaultNamespace: "" })).toThrow(
        /^defaultNamespace must be a non-empty string/,
      );
      const bad = (() => {
        try {
          new KeyvStoreroom({ state: shared.state, groupPrefix: 5 as never });
        } catch (err) {
          return err;
        }
      })();
      expect(bad).toBeInstanceOf(InvalidArgumentError);
      expect(bad).toMatchObject({ message: expect.stringMatching(/^groupPrefix must be a string/), op: "keyv.open" });
    });

    it("works under Keyv 6, which adapts it as a store that handles its own namespace", async () => {
      const ns = fresh("v6");
      const other = fresh("v6-other");
      const keyv = new Keyv6({ store: new KeyvStoreroom({ state: shared.state }), namespace: ns });
      const neighbour = new Keyv6({ store: new KeyvStoreroom({ state: shared.state }), namespace: other });
      expect(await keyv.set("user", { name: "ada" })).toBe(true);
      expect(await keyv.get("user")).toEqual({ name: "ada" });
      // Keyv 6 hands the key over as given: one group per namespace, keys unprefixed.
      expect((await shared.state.getEntry(ns, "user"))?.value).toContain("ada");
      await neighbour.set("user", "grace");
      expect(await keyv.get(["user", "nobody"])).toEqual([{ name: "ada" }, undefined]);
      expect(await keyv.has("user")).toBe(true);
      await keyv.set("session", "s1", 2000);
      expect((await shared.state.getEntry(ns, "session"))?.expiresAt).toBeGreaterThan(clock.now());
      clock.advance(2001);
      expect(await keyv.get("session")).toBeUndefined();
      const seen: [string, unknown][] = [];
      for await (const [key, value] of keyv.iterator?.() ?? []) seen.push([key as string, value]);
      expect(seen).toEqual([["user", { name: "ada" }]]);
      expect(await keyv.delete("user")).toBe(true);
      expect(await keyv.delete("user")).toBe(false);
      await keyv.set("x", 1);
      await keyv.clear();
      expect(await keyv.get("x")).toBeUndefined();
      expect(await neighbour.get("user")).toBe("grace");
    });
  },
  { clock },
);
