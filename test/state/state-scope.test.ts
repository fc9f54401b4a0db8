import { expect, it } from "vitest";
import { InvalidArgumentError, NotFoundError, QuotaExceededError } from "../../src/errors.js";
import { forEachEngine, recordEvents } from "./state-harness.js";

forEachEngine("ScopedStateStore namespaces", (h) => {
  it("validates the namespace: ^[a-zA-Z0-9-]+$", async () => {
    const s = await h.open();
    for (const ok of ["tenant-a", "A1", "x"]) expect(s.scoped(ok).namespace).toBe(ok);
    for (const bad of ["", "a:b", "a_b", "a b", "ü", "a/b"]) {
      expect(() => s.scoped(bad)).toThrow(InvalidArgumentError);
    }
  });

  it("validates quotas: non-negative integers", async () => {
    const s = await h.open();
    expect(s.scoped("t").quota).toEqual({ maxKeys: 0, maxGroups: 0 });
    expect(() => s.scoped("t", { maxKeys: -1 })).toThrow(/maxKeys/);
    expect(() => s.scoped("t", { maxGroups: 1.5 })).toThrow(/maxGroups/);
    for (const bad of [null, 5, "10"]) {
      expect(() => s.scoped("t", bad as never)).toThrow(InvalidArgumentError);
      expect(() => s.scoped("t", bad as never)).toThrow(/^quota must be an object/);
    }
  });

  it("stores groups as namespace:group with a default group", async () => {
    const s = await h.open();
    const t = s.scoped("tenant-a");
    await t.set("colour", "blue");
    await t.setIn("config", "lang", "en");
    expect(await s.get("tenant-a:default", "colour")).toBe("blue");
    expect(await s.get("tenant-a:config", "lang")).toBe("en");
    expect(await t.get("colour")).toBe("blue");
    expect(await t.getFrom("config", "lang")).toBe("en");
    expect(await t.exists("colour")).toBe(true);
    expect(await t.existsIn("config", "lang")).toBe(true);
    expect(await t.groupExists("config")).toBe(true);
    expect(await t.groupExists("nope")).toBe(false);
  });

  it("never leaks other namespaces into reads, listings and counts", async () => {
    const s = await h.open();
    const a = s.scoped("a");
    const b = s.scoped("b");
    const ab = s.scoped("ab");
    await a.setIn("g", "k", "from-a");
    await b.setIn("g", "k", "from-b");
    await ab.setIn("g", "k", "from-ab");
    await s.set("a", "raw", "not scoped");
    expect(await a.getFrom("g", "k")).toBe("from-a");
    expect(await a.groups()).toEqual(["g"]);
    expect(await a.countAll()).toBe(1);
    expect(await a.count("g")).toBe(1);
    expect(await a.getAll("g")).toEqual(new Map([["k", "from-a"]]));
    await expect(a.getFrom("other", "k")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("groups and countAll take prefixes within the namespace, LIKE wildcards literal", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    await t.setIn("cfg-1", "k", "v");
    await t.setIn("cfg-2", "k", "v");
    await t.setIn("cfg_x", "k", "v");
    await t.setIn("other", "k", "v");
    expect(await t.groups("cfg")).toEqual(["cfg-1", "cfg-2", "cfg_x"]);
    expect(await t.groups("cfg_")).toEqual(["cfg_x"]);
    expect(await t.countAll("cfg")).toBe(3);
    expect(await t.countAll("%")).toBe(0);
  });

  it("delete, deleteGroup and deletePrefix stay inside the namespace", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    const u = s.scoped("u");
    await t.setIn("a", "1", "v");
    await t.setIn("a", "2", "v");
    await t.setIn("b", "1", "v");
    await u.setIn("a", "1", "v");
    await t.delete("a", "1");
    expect(await t.count("a")).toBe(1);
    await t.deleteGroup("a");
    expect(await t.groups()).toEqual(["b"]);
    await t.deletePrefix();
    expect(await t.groups()).toEqual([]);
    expect(await u.groups()).toEqual(["a"]);
  });

  it("render, getSplit, getFields, getPage and all work on scoped groups", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    await t.setIn("u", "name", "Ada");
    await t.setIn("u", "tags", "a b");
    expect(await t.render("Hi {{ .name }}", "u")).toBe("Hi Ada");
    expect(await t.getSplit("u", "tags", " ")).toEqual(["a", "b"]);
    expect(await t.getFields("u", "tags")).toEqual(["a", "b"]);
    expect(await t.getPage("u", 1, 1)).toEqual([{ key: "tags", value: "a b" }]);
    const keys: string[] = [];
    for await (const e of t.all("u")) keys.push(e.key);
    expect(keys).toEqual(["name", "tags"]);
  });

  it("purgeExpired purges only the namespace's expired rows", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    await t.setWithTtl("g", "k", "v", 1);
    await s.setWithTtl("other", "k", "v", 1);
    h.clock.advance(1);
    expect(await t.purgeExpired()).toBe(1);
    expect(await s.purgeExpired()).toBe(1);
  });

  it("watch and onChange are namespace-local and strip the prefix", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    const all = t.watch("*");
    const one = t.watch("g");
    const { events } = recordEvents(t);
    const raw = recordEvents(s);
    await s.scoped("other").setIn("g", "k", "v");
    await s.set("t", "k", "not in ns");
    await t.setIn("g", "k", "v");
    await t.deleteGroup("g");
    expect(events.map((e) => `${e.type}:${e.group}/${e.key}`)).toEqual(["set:g/k", "delete_group:g/"]);
    expect((await all.next()).value).toMatchObject({ group: "g", key: "k" });
    expect((await one.next()).value).toMatchObject({ type: "set", group: "g" });
    expect(raw.events.map((e) => e.group)).toContain("t:g");
  });

  it("a scoped transaction commits or rolls back atomically", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 10 });
    await t.transaction(async (tx) => {
      await tx.set("a", "1");
      await tx.setIn("g", "b", "2");
      expect(await tx.countAll()).toBe(2);
    });
    await t
      .transaction(async (tx) => {
        await tx.set("c", "3");
        throw new Error("undo");
      })
      .catch(() => undefined);
    expect(await t.countAll()).toBe(2);
  });

  it("scoped deletePrefix in a transaction", async () => {
    const s = await h.open();
    const t = s.scoped("t");
    await t.setIn("x1", "k", "v");
    await t.setIn("x2", "k", "v");
    await t.setIn("y", "k", "v");
    await t.transaction(async (tx) => {
      await tx.deletePrefix("x");
      expect(await tx.groups()).toEqual(["y"]);
    });
    expect(await t.groups()).toEqual(["y"]);
  });
});

forEachEngine("ScopedStateStore quotas", (h) => {
  it("maxKeys counts live keys across all groups of the namespace", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 3 });
    await t.setIn("a", "1", "v");
    await t.setIn("b", "1", "v");
    await t.setIn("c", "1", "v");
    const err = await t.setIn("d", "1", "v").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err).toMatchObject({ limit: "keys", max: 3, code: "QUOTA_EXCEEDED" });
    expect((err as Error).message).toContain("key limit (3)");
    expect(await t.countAll()).toBe(3);
  });

  it("overwriting a live key never uses quota", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 1, maxGroups: 1 });
    await t.set("k", "1");
    await t.set("k", "2");
    await t.setWithTtl("default", "k", "3", 1_000);
    expect(await t.get("k")).toBe("3");
  });

  it("delete then reinsert is allowed", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 1 });
    await t.set("a", "1");
    await expect(t.set("b", "1")).rejects.toBeInstanceOf(QuotaExceededError);
    await t.delete("default", "a");
    await t.set("b", "1");
    expect(await t.get("b")).toBe("1");
  });

  it("expired keys do not count, and upserting an expired key counts as new (no delete event)", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 1 });
    await t.setWithTtl("g", "old", "v", 10);
    await expect(t.setIn("g", "new", "v")).rejects.toBeInstanceOf(QuotaExceededError);
    h.clock.advance(10);
    const { events } = recordEvents(t);
    await t.setIn("g", "new", "v");
    await expect(t.setIn("g", "old", "v")).rejects.toBeInstanceOf(QuotaExceededError);
    expect(events.map((e) => e.type)).toEqual(["set"]);
  });

  it("setWithTtl is quota-checked", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 1 });
    await t.setWithTtl("g", "a", "v", 100);
    await expect(t.setWithTtl("g", "b", "v", 100)).rejects.toBeInstanceOf(QuotaExceededError);
  });

  it("maxGroups limits new groups; existing groups still take keys", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxGroups: 2 });
    await t.setIn("a", "1", "v");
    await t.setIn("b", "1", "v");
    await t.setIn("a", "2", "v");
    const err = await t.setIn("c", "1", "v").catch((e: unknown) => e);
    expect(err).toMatchObject({ limit: "groups", max: 2 });
    expect((err as Error).message).toContain("group limit (2)");
    await t.deleteGroup("b");
    await t.setIn("c", "1", "v");
    expect(await t.groups()).toEqual(["a", "c"]);
  });

  it("expired groups do not count toward maxGroups", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxGroups: 1 });
    await t.setWithTtl("temp", "k", "v", 5);
    await expect(t.setIn("next", "k", "v")).rejects.toBeInstanceOf(QuotaExceededError);
    h.clock.advance(5);
    await t.setIn("next", "k", "v");
  });

  it("both limits together: the first one hit is named", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 3, maxGroups: 2 });
    await t.setIn("a", "1", "v");
    await t.setIn("b", "1", "v");
    await expect(t.setIn("c", "1", "v")).rejects.toMatchObject({ limit: "groups" });
    await t.setIn("a", "2", "v");
    await expect(t.setIn("a", "3", "v")).rejects.toMatchObject({ limit: "keys" });
  });

  it("other namespaces and raw writes are not counted", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 1 });
    await s.scoped("u").setIn("g", "k", "v");
    await s.set("tx:g", "k", "v");
    await t.setIn("g", "k", "v");
    expect(await t.countAll()).toBe(1);
  });

  it("a scoped transaction's quota checks see its pending writes", async () => {
    const s = await h.open();
    const t = s.scoped("t", { maxKeys: 2 });
    await expect(
      t.transaction(async (tx) => {
        await tx.set("a", "v");
        await tx.set("b", "v");
        await tx.set("c", "v");
      }),
    ).rejects.toBeInstanceOf(QuotaExceededError);
    expect(await t.countAll()).toBe(0);
  });

  it("many concurrent writers never exceed maxKeys (check and write in one transaction)", async () => {
    const s = await h.open();
    const t = s.scoped("race", { maxKeys: 7 });
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => t.setIn(`g${i % 5}`, `k${i}`, "v")));
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const quota = results.filter((r) => r.status === "rejected" && r.reason instanceof QuotaExceededError).length;
    expect(ok).toBe(7);
    expect(quota).toBe(33);
    expect(await t.countAll()).toBe(7);
  });

  it("many concurrent writers never exceed maxGroups", async () => {
    const s = await h.open();
    const t = s.scoped("race", { maxGroups: 3 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => t.setIn(`g${i}`, "k", "v")));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(await t.groups()).toHaveLength(3);
  });
});
