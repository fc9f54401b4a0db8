import fc from "fast-check";
import { expect, it } from "vitest";
import { ManualScheduler } from "../../src/clock.js";
import { InvalidArgumentError, NotFoundError } from "../../src/errors.js";
import { forEachEngine, recordEvents, START } from "./state-harness.js";

forEachEngine("StateStore TTL and purge", (h) => {
  it("a TTL entry is readable before expiry and NotFound at and after it", async () => {
    const s = await h.open();
    await s.setWithTtl("session", "token", "abc", 1_000);
    h.clock.advance(999);
    expect(await s.get("session", "token")).toBe("abc");
    h.clock.advance(1);
    await expect(s.get("session", "token")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("get deletes an expired row lazily and emits one delete event", async () => {
    const s = await h.open();
    await s.setWithTtl("g", "k", "v", 10);
    const { events } = recordEvents(s);
    h.clock.advance(10);
    await expect(s.get("g", "k")).rejects.toBeInstanceOf(NotFoundError);
    await expect(s.get("g", "k")).rejects.toBeInstanceOf(NotFoundError);
    expect(events).toEqual([
      { type: "delete", group: "g", key: "k", timestamp: h.clock.now(), version: await s.version() },
    ]);
    // The row is physically gone: a purge finds nothing.
    expect(await s.purgeExpired()).toBe(0);
  });

  it("expired entries are invisible to every read before any purge", async () => {
    const s = await h.open();
    await s.set("g", "live", "1");
    await s.setWithTtl("g", "old", "2", 5);
    await s.setWithTtl("gone", "x", "3", 5);
    h.clock.advance(5);
    expect(await s.exists("g", "old")).toBe(false);
    expect(await s.groupExists("gone")).toBe(false);
    expect(await s.count("g")).toBe(1);
    expect(await s.countAll()).toBe(1);
    expect(await s.getAll("g")).toEqual(new Map([["live", "1"]]));
    expect(await s.getPage("g", 0, 10)).toEqual([{ key: "live", value: "1" }]);
    const streamed: string[] = [];
    for await (const e of s.all("g")) streamed.push(e.key);
    expect(streamed).toEqual(["live"]);
    expect(await s.groups()).toEqual(["g"]);
    expect(await s.render("{{ .live }}/{{ .old }}", "g")).toBe("1/<no value>");
  });

  it("a clock with fractional milliseconds works on every engine", async () => {
    const s = await h.open();
    h.clock.set(START + 0.75);
    await s.setWithTtl("g", "k", "v", 10.5);
    await s.commitToJournal("m");
    h.clock.set(START + 10.9);
    expect(await s.get("g", "k")).toBe("v");
    h.clock.set(START + 11.2);
    await expect(s.get("g", "k")).rejects.toBeInstanceOf(NotFoundError);
    expect(await s.purgeExpired()).toBe(0);
  });

  it("set clears a TTL; setWithTtl refreshes it", async () => {
    const s = await h.open();
    await s.setWithTtl("g", "k", "v1", 10);
    await s.set("g", "k", "v2");
    h.clock.advance(1_000_000);
    expect(await s.get("g", "k")).toBe("v2");
    await s.setWithTtl("g", "k", "v3", 100);
    h.clock.advance(60);
    await s.setWithTtl("g", "k", "v4", 100);
    h.clock.advance(60);
    expect(await s.get("g", "k")).toBe("v4");
    h.clock.advance(40);
    await expect(s.get("g", "k")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("setWithTtl rejects non-positive or non-finite TTLs and writes nothing", async () => {
    const s = await h.open();
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(s.setWithTtl("g", "k", "v", ttl)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(await s.countAll()).toBe(0);
  });

  it("purgeExpired removes only expired rows, returns the count and emits delete per row", async () => {
    const s = await h.open();
    await s.set("g", "keep", "v");
    await s.setWithTtl("g", "a", "v", 10);
    await s.setWithTtl("h", "b", "v", 10);
    await s.setWithTtl("g", "later", "v", 1_000);
    h.clock.advance(10);
    const { events } = recordEvents(s);
    expect(await s.purgeExpired()).toBe(2);
    expect(events.map((e) => `${e.type}:${e.group}/${e.key}`).sort()).toEqual(["delete:g/a", "delete:h/b"]);
    expect(await s.purgeExpired()).toBe(0);
    expect(events).toHaveLength(2);
    expect(await s.count("g")).toBe(2);
  });

  it("a TTL whose expiry would pass the largest safe integer is refused on every engine and writes nothing", async () => {
    const s = await h.open();
    const longest = Number.MAX_SAFE_INTEGER - h.clock.now();
    for (const ttlMs of [longest + 1, 2 ** 62, 1e300]) {
      await expect(s.setWithTtl("g", "k", "v", ttlMs)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/^ttlMs must be at most/),
      });
      await expect(s.set("g", "k", "v", { ttlMs })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.batch([{ type: "set", group: "g", key: "k", value: "v", ttlMs }])).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      await expect(s.scoped("ns", { maxKeys: 5 }).setWithTtl("g", "k", "v", ttlMs)).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    expect(await s.countAll()).toBe(0);
    expect(await s.version()).toBe(1);
    await s.setWithTtl("g", "k", "v", longest);
    expect(await s.getEntry("g", "k")).toMatchObject({ expiresAt: Number.MAX_SAFE_INTEGER });
  });

  it("purgeExpired with a prefix purges only matching groups", async () => {
    const s = await h.open();
    await s.setWithTtl("a:1", "k", "v", 1);
    await s.setWithTtl("b:1", "k", "v", 1);
    h.clock.advance(1);
    expect(await s.purgeExpired("a:")).toBe(1);
    expect(await s.purgeExpired()).toBe(1);
  });

  it("a set racing a lazy delete is never lost", async () => {
    const s = await h.open();
    await s.setWithTtl("g", "k", "old", 1);
    h.clock.advance(1);
    await Promise.all([s.get("g", "k").catch(() => undefined), s.set("g", "k", "new")]);
    expect(await s.get("g", "k")).toBe("new");
  });

  it("the background purge runs every purgeIntervalMs and stops on close", async () => {
    const s = await h.open({ purgeIntervalMs: 20 });
    await s.setWithTtl("g", "k", "v", 1);
    h.clock.advance(5);
    const { events } = recordEvents(s);
    await expect.poll(() => events.length, { timeout: 3_000, interval: 10 }).toBe(1);
    expect(events[0]).toMatchObject({ type: "delete", group: "g", key: "k" });
    await s.close();
    expect(s.closed).toBe(true);
  });

  it("close stops the background purge: no purge statement runs afterwards", async () => {
    const db = await h.freshDatabase();
    let purges = 0;
    const counting = new Proxy(db, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          if (typeof args[0] === "string" && args[0].includes("expires_at <= $1")) purges++;
          return v.apply(target, args);
        };
      },
    });
    // The jobs run on a clock the test moves: after close() no timer is left to fire.
    const clock = new ManualScheduler(START);
    const s = await h.openOn(counting, { purgeIntervalMs: 5, clock });
    clock.advance(5);
    await expect.poll(() => purges, { timeout: 3_000, interval: 5 }).toBeGreaterThan(0);
    await s.close();
    const after = purges;
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(purges).toBe(after);
  });

  it("property: a key is visible exactly while now < set time + ttl", async () => {
    const s = await h.open();
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ ttl: fc.integer({ min: 1, max: 1_000 }), persistent: fc.boolean() }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 6 }),
        async (writes, steps) => {
          const group = `p${round++}`;
          const base = h.clock.now();
          const expiry = new Map<string, number>();
          for (const [i, w] of writes.entries()) {
            if (w.persistent) await s.set(group, `k${i}`, "v");
            else await s.setWithTtl(group, `k${i}`, "v", w.ttl);
            expiry.set(`k${i}`, w.persistent ? Number.POSITIVE_INFINITY : base + w.ttl);
          }
          for (const step of steps) {
            h.clock.advance(step);
            const now = h.clock.now();
            const expected = [...expiry]
              .filter(([, at]) => now < at)
              .map(([k]) => k)
              .sort();
            expect([...(await s.getAll(group)).keys()].sort()).toEqual(expected);
            expect(await s.count(group)).toBe(expected.length);
            for (const k of expiry.keys()) expect(await s.exists(group, k)).toBe(expected.includes(k));
          }
        },
      ),
      { numRuns: h.engine === "sqlite" ? 60 : 20 },
    );
  });
});
