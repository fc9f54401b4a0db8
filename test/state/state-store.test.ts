import { expect, it } from "vitest";
import { ClosedError, InvalidArgumentError, isStoreError, NotFoundError } from "../../src/errors.js";
import { forEachEngine } from "./state-harness.js";

forEachEngine("StateStore reads and writes", (h) => {
  it("set then get returns the value", async () => {
    const s = await h.open();
    await s.set("config", "colour", "blue");
    expect(await s.get("config", "colour")).toBe("blue");
  });

  it("get of a missing key throws NotFoundError naming group/key", async () => {
    const s = await h.open();
    const err = await s.get("config", "nope").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(isStoreError(err, "NOT_FOUND")).toBe(true);
    expect((err as Error).message).toBe("config/nope");
  });

  it("set upserts: one row, last value wins", async () => {
    const s = await h.open();
    await s.set("g", "k", "one");
    await s.set("g", "k", "two");
    expect(await s.get("g", "k")).toBe("two");
    expect(await s.count("g")).toBe(1);
  });

  it("groups isolate keys", async () => {
    const s = await h.open();
    await s.set("a", "k", "in-a");
    await s.set("b", "k", "in-b");
    expect(await s.get("a", "k")).toBe("in-a");
    expect(await s.get("b", "k")).toBe("in-b");
    await s.delete("a", "k");
    expect(await s.get("b", "k")).toBe("in-b");
  });

  it("delete removes the key; deleting an absent key is not an error", async () => {
    const s = await h.open();
    await s.set("g", "k", "v");
    await expect(s.delete("g", "k")).resolves.toBe(true);
    await expect(s.get("g", "k")).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.delete("g", "k")).resolves.toBe(false);
    await expect(s.delete("nothing", "here")).resolves.toBe(false);
  });

  it("exists and groupExists reflect live rows", async () => {
    const s = await h.open();
    expect(await s.exists("g", "k")).toBe(false);
    expect(await s.groupExists("g")).toBe(false);
    await s.set("g", "k", "v");
    expect(await s.exists("g", "k")).toBe(true);
    expect(await s.exists("g", "other")).toBe(false);
    expect(await s.groupExists("g")).toBe(true);
    await s.delete("g", "k");
    expect(await s.groupExists("g")).toBe(false);
  });

  it("count counts a group; 500 keys in bulk", async () => {
    const s = await h.open();
    await s.transaction(async (tx) => {
      for (let i = 0; i < 500; i++) await tx.set("bulk", `k${i}`, `v${i}`);
    });
    await s.set("other", "k", "v");
    expect(await s.count("bulk")).toBe(500);
    expect(await s.count("empty")).toBe(0);
  });

  it("countAll counts across groups with a literal prefix", async () => {
    const s = await h.open();
    await s.set("tenant-a:x", "1", "v");
    await s.set("tenant-a:y", "1", "v");
    await s.set("tenant-a:y", "2", "v");
    await s.set("tenant-b:x", "1", "v");
    await s.set("tenant_a:x", "1", "v");
    expect(await s.countAll("tenant-a:")).toBe(3);
    expect(await s.countAll("tenant")).toBe(5);
    expect(await s.countAll("")).toBe(5);
    expect(await s.countAll()).toBe(5);
    // LIKE wildcards in the prefix match literally.
    expect(await s.countAll("tenant_")).toBe(1);
    expect(await s.countAll("%")).toBe(0);
  });

  it("deleteGroup removes only that group and reports rows", async () => {
    const s = await h.open();
    await s.set("a", "1", "v");
    await s.set("a", "2", "v");
    await s.set("b", "1", "v");
    expect(await s.deleteGroup("a")).toBe(2);
    expect(await s.count("a")).toBe(0);
    expect(await s.count("b")).toBe(1);
    expect(await s.deleteGroup("a")).toBe(0);
  });

  it("deletePrefix removes matching groups only, literally", async () => {
    const s = await h.open();
    await s.set("cache:a", "1", "v");
    await s.set("cache:b", "1", "v");
    await s.set("cachex", "1", "v");
    await s.set("cache_%", "1", "v");
    await s.set("keep", "1", "v");
    expect(await s.deletePrefix("cache:")).toBe(2);
    expect(await s.groups()).toEqual(["cache_%", "cachex", "keep"]);
    expect(await s.deletePrefix("cache_")).toBe(1);
    expect(await s.groups()).toEqual(["cachex", "keep"]);
  });

  it("deletePrefix with an empty prefix removes every group", async () => {
    const s = await h.open();
    await s.set("a", "1", "v");
    await s.set("b", "1", "v");
    expect(await s.deletePrefix("")).toBe(2);
    expect(await s.groups()).toEqual([]);
  });

  it("getAll returns a Map of the group's live entries", async () => {
    const s = await h.open();
    await s.set("g", "b", "2");
    await s.set("g", "a", "1");
    await s.set("other", "c", "3");
    expect(await s.getAll("g")).toEqual(
      new Map([
        ["a", "1"],
        ["b", "2"],
      ]),
    );
    expect((await s.getAll("empty")).size).toBe(0);
  });

  it("getAll iterates in key (code point) order whatever the write order", async () => {
    const s = await h.open();
    const keys = ["m", "b", "z", "a", "é", "B", "a1", "~", "0", "k"];
    for (const k of keys) await s.set("g", k, k);
    // Rewriting moves rows on PostgreSQL's heap; order must still come from the keys.
    await s.set("g", "b", "again");
    const expected = [...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    expect([...(await s.getAll("g")).keys()]).toEqual(expected);
    expect((await s.getPage("g", 0, 100)).map((e) => e.key)).toEqual(expected);
  });

  it("getAll keeps keys like __proto__ as data", async () => {
    const s = await h.open();
    await s.set("g", "__proto__", "x");
    await s.set("g", "constructor", "y");
    const all = await s.getAll("g");
    expect(all.get("__proto__")).toBe("x");
    expect(all.get("constructor")).toBe("y");
  });

  it("getPage pages in key order", async () => {
    const s = await h.open();
    for (const k of ["e", "a", "d", "c", "b"]) await s.set("g", k, k.toUpperCase());
    expect(await s.getPage("g", 0, 2)).toEqual([
      { key: "a", value: "A" },
      { key: "b", value: "B" },
    ]);
    expect((await s.getPage("g", 2, 2)).map((e) => e.key)).toEqual(["c", "d"]);
    expect((await s.getPage("g", 4, 10)).map((e) => e.key)).toEqual(["e"]);
    expect(await s.getPage("g", 10, 10)).toEqual([]);
    expect(await s.getPage("g", 0, 0)).toEqual([]);
  });

  it("getPage rejects negative or fractional bounds with InvalidArgumentError", async () => {
    const s = await h.open();
    await expect(s.getPage("g", -1, 5)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.getPage("g", 0, -1)).rejects.toThrow(/limit must be zero or positive/);
    await expect(s.getPage("g", 0.5, 1)).rejects.toThrow(/offset must be zero or positive/);
  });

  it("all streams entries ordered by code point and stops early", async () => {
    const s = await h.open();
    for (const k of ["b", "a", "C", "é", "c"]) await s.set("g", k, `v-${k}`);
    const keys: string[] = [];
    for await (const e of s.all("g")) keys.push(e.key);
    expect(keys).toEqual(["C", "a", "b", "c", "é"]);
    const first: string[] = [];
    for await (const e of s.all("g")) {
      first.push(e.key);
      if (first.length === 2) break;
    }
    expect(first).toEqual(["C", "a"]);
    // The store stays usable after an early exit (the cursor was closed).
    await s.set("g", "z", "v");
    expect(await s.count("g")).toBe(6);
  });

  it("groups lists distinct live groups in order, with an optional prefix", async () => {
    const s = await h.open();
    await s.set("b", "1", "v");
    await s.set("a", "1", "v");
    await s.set("a", "2", "v");
    await s.set("ab", "1", "v");
    expect(await s.groups()).toEqual(["a", "ab", "b"]);
    expect(await s.groups("a")).toEqual(["a", "ab"]);
    expect(await s.groups("zzz")).toEqual([]);
  });

  it("getSplit follows Go strings.Split", async () => {
    const s = await h.open();
    await s.set("g", "hosts", "a,b,,c");
    await s.set("g", "empty", "");
    await s.set("g", "word", "héllo");
    expect(await s.getSplit("g", "hosts", ",")).toEqual(["a", "b", "", "c"]);
    expect(await s.getSplit("g", "hosts", ";")).toEqual(["a,b,,c"]);
    expect(await s.getSplit("g", "empty", ",")).toEqual([""]);
    expect(await s.getSplit("g", "word", "")).toEqual(["h", "é", "l", "l", "o"]);
    await expect(s.getSplit("g", "missing", ",")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("getFields splits on Unicode whitespace runs", async () => {
    const s = await h.open();
    await s.set("g", "flags", "  alpha beta\tgamma\n\u00a0delta\u3000 ");
    await s.set("g", "blank", " \t ");
    expect(await s.getFields("g", "flags")).toEqual(["alpha", "beta", "gamma", "delta"]);
    expect(await s.getFields("g", "blank")).toEqual([]);
    await expect(s.getFields("g", "missing")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("stores empty group, key and value", async () => {
    const s = await h.open();
    await s.set("", "", "");
    expect(await s.get("", "")).toBe("");
    expect(await s.exists("", "")).toBe(true);
    expect(await s.groups()).toEqual([""]);
  });

  it("stores 10,000-character keys and large values", async () => {
    const s = await h.open();
    const key = "k".repeat(10_000);
    const value = "v".repeat(100_000);
    await s.set("g", key, value);
    expect(await s.get("g", key)).toBe(value);
  });

  it("stores unicode, CJK, Arabic and emoji text exactly", async () => {
    const s = await h.open();
    const cases = ["日本語のキー", "مفتاح عربي", "emoji 🚀✨", "combining é (e\u0301)", "Ünïcödé"];
    for (const c of cases) await s.set(c, c, c);
    for (const c of cases) expect(await s.get(c, c)).toBe(c);
  });

  it("refuses a lone surrogate in a group, key or value and writes nothing: two such keys would become one", async () => {
    const s = await h.open();
    const calls = [
      () => s.set("g", "cut\uD83D", "v"),
      () => s.set("g", "k", "cut\uDE80"),
      () => s.set("\uD800", "k", "v"),
      () => s.batch([{ type: "set", group: "g", key: "\uDBFF", value: "v" }]),
      () => s.scoped("ns", { maxKeys: 3 }).setIn("g", "x\uD800", "v"),
      () => s.get("g", "cut\uD83D"),
      () => s.groups("\uD800"),
    ];
    for (const call of calls) {
      await expect(call()).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/well-formed Unicode/),
      });
    }
    expect(await s.countAll()).toBe(0);
    // A surrogate pair is a character like any other.
    await s.set("g", "\uD83D\uDE80", "\uD83D\uDE80");
    expect(await s.getAll("g")).toEqual(new Map([["\uD83D\uDE80", "\uD83D\uDE80"]]));
  });

  it("treats SQL injection strings as plain data", async () => {
    const s = await h.open();
    const evil = "'; DROP TABLE entries; --";
    await s.set(evil, evil, evil);
    await s.set("g", "x' OR '1'='1", "v");
    expect(await s.get(evil, evil)).toBe(evil);
    await expect(s.get("g", "anything' OR '1'='1")).rejects.toBeInstanceOf(NotFoundError);
    expect(await s.count("g")).toBe(1);
  });

  if (h.engine === "sqlite") {
    it("stores NUL characters on SQLite", async () => {
      const s = await h.open();
      await s.set("g\u0000", "k\u0000x", "a\u0000b");
      expect(await s.get("g\u0000", "k\u0000x")).toBe("a\u0000b");
    });
  } else {
    it("rejects NUL characters on PostgreSQL with InvalidArgumentError and writes nothing", async () => {
      const s = await h.open();
      await expect(s.set("g", "k", "a\u0000b")).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await s.count("g")).toBe(0);
    });
  }

  it("rejects non-string arguments with InvalidArgumentError", async () => {
    const s = await h.open();
    await expect(s.set("g", 1 as unknown as string, "v")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.set("g", "k", undefined as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.get(null as unknown as string, "k")).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await s.countAll()).toBe(0);
  });

  it("every operation throws ClosedError after close; close is idempotent", async () => {
    const s = await h.open();
    await s.set("g", "k", "v");
    await s.close();
    await s.close();
    expect(s.closed).toBe(true);
    const calls: (() => Promise<unknown>)[] = [
      () => s.get("g", "k"),
      () => s.set("g", "k", "v"),
      () => s.setWithTtl("g", "k", "v", 10),
      () => s.delete("g", "k"),
      () => s.exists("g", "k"),
      () => s.groupExists("g"),
      () => s.count("g"),
      () => s.countAll(),
      () => s.deleteGroup("g"),
      () => s.deletePrefix(""),
      () => s.getAll("g"),
      () => s.getPage("g", 0, 1),
      () => s.all("g").next(),
      () => s.groups(),
      () => s.getSplit("g", "k", ","),
      () => s.getFields("g", "k"),
      () => s.render("x", "g"),
      () => s.render("{{ unclosed", "g"),
      () => s.purgeExpired(),
      () => s.transaction(async () => {}),
      () => s.commitToJournal("m"),
      () => s.queryJournal(),
      () => s.newWorkspace("w"),
    ];
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(ClosedError);
  });

  it("a store over a caller's database leaves it open on close", async () => {
    const db = await h.freshDatabase();
    const s = await h.openOn(db);
    await s.set("g", "k", "v");
    await s.close();
    expect(db.closed).toBe(false);
    const again = await h.openOn(db);
    expect(await again.get("g", "k")).toBe("v");
  });

  it("10 concurrent writers and readers see consistent values", async () => {
    const s = await h.open();
    await Promise.all(
      Array.from({ length: 10 }, async (_, w) => {
        for (let i = 0; i < 20; i++) {
          await s.set(`w${w}`, `k${i}`, `v${i}`);
          expect(await s.get(`w${w}`, `k${i}`)).toBe(`v${i}`);
        }
      }),
    );
    for (let w = 0; w < 10; w++) expect(await s.count(`w${w}`)).toBe(20);
    expect(await s.countAll()).toBe(200);
  });

  it("concurrent getAll and deleteGroup never see a half-deleted group", async () => {
    const s = await h.open();
    await s.transaction(async (tx) => {
      for (let i = 0; i < 50; i++) await tx.set("g", `k${i}`, "v");
    });
    const sizes = await Promise.all([
      s.getAll("g").then((m) => m.size),
      s.deleteGroup("g").then(() => -1),
      s.getAll("g").then((m) => m.size),
    ]);
    for (const n of sizes) expect([50, 0, -1]).toContain(n);
    expect(await s.count("g")).toBe(0);
  });
});
