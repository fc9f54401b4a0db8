import { createStorage, prefixStorage } from "unstorage";
import { expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import storeroomDriver from "../../src/unstorage/index.js";
import { forEachStateBackend } from "../support/state-backends.js";

// Cases written from unstorage's driver documentation (storage interface, mounts, prefixes,
// meta, raw values, watch, TTL), always through unstorage's own createStorage.
const START = Date.parse("2026-01-01T00:00:00Z");
const clock = new ManualClock(START);
let n = 0;
const freshGroup = () => `unstorage-${n++}`;

forEachStateBackend(
  "storeroom unstorage driver",
  (shared) => {
    const storageOn = (options: { group?: string; base?: string; ttl?: number } = {}) =>
      createStorage({ driver: storeroomDriver({ state: shared.state, group: freshGroup(), ...options }) });

    it("hasItem, getItem, setItem and removeItem, with values serialized as unstorage does", async () => {
      const storage = storageOn();
      expect(await storage.hasItem("a:b")).toBe(false);
      expect(await storage.getItem("a:b")).toBeNull();
      await storage.setItem("a:b", "text");
      await storage.setItem("obj", { role: "admin", n: 1 });
      await storage.setItem("num", 42);
      await storage.setItem("flag", false);
      expect(await storage.hasItem("a:b")).toBe(true);
      expect(await storage.getItem("a:b")).toBe("text");
      expect(await storage.getItem("obj")).toEqual({ role: "admin", n: 1 });
      expect(await storage.getItem("num")).toBe(42);
      expect(await storage.getItem("flag")).toBe(false);
      // Keys are normalized by unstorage: slashes are separators too.
      expect(await storage.getItem("/a/b")).toBe("text");
      await storage.removeItem("a:b");
      expect(await storage.hasItem("a:b")).toBe(false);
      // Setting undefined removes, per the storage interface.
      await storage.setItem("num", undefined as unknown as string);
      expect(await storage.hasItem("num")).toBe(false);
    });

    it("getItems and setItems in one call each; setItems is one atomic write", async () => {
      const storage = storageOn();
      const before = await shared.state.version();
      await storage.setItems<string | { two: number }>([
        { key: "x:1", value: "one" },
        { key: "x:2", value: { two: 2 } },
      ]);
      expect(await shared.state.version()).toBe(before + 2);
      expect(await storage.getItems(["x:1", "x:2", "x:3"])).toEqual([
        { key: "x:1", value: "one" },
        { key: "x:2", value: { two: 2 } },
        { key: "x:3", value: null },
      ]);
    });

    it("getKeys lists every key or those under a base; clear empties a mount, and the driver's clear(base) a base", async () => {
      const group = freshGroup();
      const driver = storeroomDriver({ state: shared.state, group });
      const storage = createStorage({ driver });
      for (const key of ["users:ada", "users:grace", "posts:1", "posts:2:draft", "top"])
        await storage.setItem(key, key);
      expect((await storage.getKeys()).sort()).toEqual(["posts:1", "posts:2:draft", "top", "users:ada", "users:grace"]);
      expect((await storage.getKeys("users")).sort()).toEqual(["users:ada", "users:grace"]);
      expect((await storage.getKeys("posts:")).sort()).toEqual(["posts:1", "posts:2:draft"]);
      expect(await storage.getKeys("posts", { maxDepth: 1 })).toEqual(["posts:1"]);
      // unstorage clears whole mounts; a driver is also asked to clear under a base directly.
      await driver.clear("users:");
      expect((await storage.getKeys()).sort()).toEqual(["posts:1", "posts:2:draft", "top"]);
      await storage.clear();
      expect(await storage.getKeys()).toEqual([]);
      expect(await shared.state.getEntries(group)).toEqual([]);
    });

    it("mounts and prefixes: a mount is its own driver, and prefixStorage narrows the view", async () => {
      const rootGroup = freshGroup();
      const cacheGroup = freshGroup();
      const storage = createStorage({ driver: storeroomDriver({ state: shared.state, group: rootGroup }) });
      storage.mount("cache", storeroomDriver({ state: shared.state, group: cacheGroup, base: "v1" }));
      await storage.setItem("root-key", "r");
      await storage.setItem("cache:page:home", "<html>");
      const users = prefixStorage(storage, "users");
      await users.setItem("ada", { admin: true });
      expect(await storage.getItem("users:ada")).toEqual({ admin: true });
      expect(await users.getKeys()).toEqual(["ada"]);
      expect(await users.hasItem("ada")).toBe(true);
      expect((await storage.getKeys()).sort()).toEqual(["cache:page:home", "root-key", "users:ada"]);
      expect(await storage.getKeys("cache")).toEqual(["cache:page:home"]);
      // Each driver's items are entries of its own group, the mount's under its base.
      expect((await shared.state.getEntries(rootGroup)).map((e) => e.key).sort()).toEqual(["root-key", "users:ada"]);
      expect((await shared.state.getEntries(cacheGroup)).map((e) => e.key)).toEqual(["v1:page:home"]);
      await storage.clear("cache");
      expect((await storage.getKeys()).sort()).toEqual(["root-key", "users:ada"]);
      await users.removeItem("ada");
      expect(await storage.getKeys()).toEqual(["root-key"]);
    });

    it("keeps raw values as bytes: every byte value round-trips and reads back as a Uint8Array", async () => {
      const storage = storageOn();
      const bytes = new Uint8Array(256).map((_, i) => i);
      await storage.setItemRaw("bin", bytes);
      const back = await storage.getItemRaw("bin");
      expect(back).toBeInstanceOf(Uint8Array);
      expect([...(back as Uint8Array)]).toEqual([...bytes]);
      await storage.setItemRaw("buffer", Buffer.from("héllo"));
      expect(Buffer.from((await storage.getItemRaw("buffer")) as Uint8Array).toString("utf8")).toBe("héllo");
      await storage.setItemRaw("arraybuffer", new Uint8Array([9, 8]).buffer);
      expect([...((await storage.getItemRaw("arraybuffer")) as Uint8Array)]).toEqual([9, 8]);
      // A raw value read as an item comes back in unstorage's own base64 text form.
      expect(await storage.getItem("arraybuffer")).toBe("base64:CQg=");
      expect(await storage.getItemRaw("missing")).toBeNull();
    });

    it("getMeta reports mtime, size and the remaining ttl natively, and merges unstorage's own meta", async () => {
      const storage = storageOn();
      await storage.setItem("doc", "12345", { ttl: 60 });
      clock.advance(10_000);
      const written = clock.now();
      await storage.setItem("plain", "abc");
      const meta = await storage.getMeta("doc", { nativeOnly: true });
      expect(meta).toEqual({ mtime: new Date(written - 10_000), size: 5, ttl: 50 });
      expect(await storage.getMeta("plain", true)).toEqual({ mtime: new Date(written), size: 3 });
      await storage.setMeta("plain", { owner: "ada" });
      expect(await storage.getMeta("plain")).toEqual({ mtime: new Date(written), size: 3, owner: "ada" });
      expect(await storage.getMeta("missing", true)).toEqual({});
    });

    it("expires items natively after their ttl (per call, or the driver's default) on the store's clock", async () => {
      const storage = storageOn({ ttl: 30 });
      await storage.setItem("default-ttl", "d");
      await storage.setItem("short", "s", { ttl: 5 });
      clock.advance(5_001);
      expect(await storage.hasItem("short")).toBe(false);
      expect(await storage.getItem("default-ttl")).toBe("d");
      clock.advance(25_000);
      expect(await storage.getItem("default-ttl")).toBeNull();
      expect(await storage.getKeys()).toEqual([]);
      await expect(storage.setItem("bad", "x", { ttl: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await storage.hasItem("bad")).toBe(false);
    });

    it("watch reports updates and removals with mount-relative keys, from the store's change events", async () => {
      const group = freshGroup();
      const mountGroup = freshGroup();
      const storage = createStorage({ driver: storeroomDriver({ state: shared.state, group }) });
      storage.mount("mnt", storeroomDriver({ state: shared.state, group: mountGroup, base: "m" }));
      const seen: string[] = [];
      const unwatch = await storage.watch((event, key) => seen.push(`${event} ${key}`));
      await storage.setItem("a", "1");
      await storage.setItem("mnt:b", "2");
      await storage.removeItem("a");
      await storage.setItem("mnt:ttl", "t", { ttl: 1 });
      clock.advance(1_001);
      expect(await storage.getItem("mnt:ttl")).toBeNull();
      // A write around unstorage, straight into the state group, is seen too.
      await shared.state.set(mountGroup, "m:direct", JSON.stringify({ mtime: clock.now(), value: "d" }));
      await storage.clear("mnt");
      await unwatch();
      await storage.setItem("after", "unwatched");
      expect(seen).toEqual([
        "update a",
        "update mnt:b",
        "remove a",
        "update mnt:ttl",
        "remove mnt:ttl",
        "update mnt:direct",
        "remove mnt:b",
        "remove mnt:direct",
      ]);
    });

    it("reads entries written around the driver as plain strings without mtime", async () => {
      const group = freshGroup();
      const storage = createStorage({ driver: storeroomDriver({ state: shared.state, group }) });
      await shared.state.set(group, "legacy", "plain text");
      expect(await storage.getItem("legacy")).toBe("plain text");
      expect(await storage.getMeta("legacy", true)).toEqual({ size: 10 });
      // Text written around the driver that only starts like the driver's envelope is still text.
      for (const text of ['{"mtime":5}', '{"mtime":5,"by":"cron"}', '{"mtime":"today","value":"x"}']) {
        await shared.state.set(group, "lookalike", text);
        expect(await storage.getItemRaw("lookalike")).toBe(text);
        expect(await storage.hasItem("lookalike")).toBe(true);
        expect(await storage.getMeta("lookalike", true)).toEqual({ size: Buffer.byteLength(text) });
      }
      await shared.state.set(group, "lookalike", '{"mtime":5,"by":"cron"}');
      expect(await storage.getItem("lookalike")).toEqual({ mtime: 5, by: "cron" });
    });

    it('defaults to the group "unstorage" and declares native TTL', async () => {
      const driver = storeroomDriver({ state: shared.state });
      expect(driver.name).toBe("storeroom");
      expect(driver.flags.ttl).toBe(true);
      const storage = createStorage({ driver });
      await storage.setItem("default-group:probe", "here");
      expect(await shared.state.getEntry("unstorage", "default-group:probe")).not.toBeNull();
      await storage.removeItem("default-group:probe");
    });

    it("lists and clears more keys than one page (500) holds, telling watchers of every removal", async () => {
      const group = freshGroup();
      const driver = storeroomDriver({ state: shared.state, group });
      const storage = createStorage({ driver });
      const keys = Array.from({ length: 1_001 }, (_, i) => `k:${String(i).padStart(4, "0")}`);
      await storage.setItems(keys.map((key) => ({ key, value: "v" })));
      await shared.state.set(group, "other", "kept");
      expect((await storage.getKeys("k")).sort()).toEqual(keys);
      const removed: string[] = [];
      const unwatch = await storage.watch((event, key) => {
        if (event === "remove") removed.push(key);
      });
      try {
        // unstorage clears whole mounts; under a base inside one it is the driver's clear(base).
        await driver.clear("k");
        await vi.waitFor(() => expect(removed).toHaveLength(1_001), { timeout: 10_000 });
      } finally {
        await unwatch();
      }
      expect(removed.sort()).toEqual(keys);
      expect(await storage.getKeys()).toEqual(["other"]);
    });

    it("refuses bad options naming them", () => {
      expect(() => storeroomDriver({} as never)).toThrow(/^state must be a StateStore/);
      expect(() => storeroomDriver({ state: shared.state, group: "" })).toThrow(/^group must be a non-empty string/);
      expect(() => storeroomDriver({ state: shared.state, ttl: 0 })).toThrow(/^ttl must be a positive number/);
      expect(() => storeroomDriver({ state: shared.state, base: 5 as never })).toThrow(/^base must be a string/);
    });
  },
  { clock },
);
