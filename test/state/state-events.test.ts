import { expect, it, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { type StateEvent, stateMigrations } from "../../src/state/index.js";
import { forEachEngine, recordEvents } from "./state-harness.js";

async function take(it: AsyncIterator<StateEvent>, n: number): Promise<StateEvent[]> {
  const out: StateEvent[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

forEachEngine("StateStore events", (h) => {
  it("watch(group) receives set and delete events of that group only", async () => {
    const s = await h.open();
    const w = s.watch("config");
    await s.set("other", "k", "v");
    const written = await s.set("config", "colour", "blue");
    await s.delete("config", "colour");
    await s.delete("config", "colour");
    expect(await take(w, 2)).toEqual([
      { type: "set", group: "config", key: "colour", value: "blue", timestamp: h.clock.now(), version: written },
      { type: "delete", group: "config", key: "colour", timestamp: h.clock.now(), version: written + 1 },
    ]);
    await w.close();
    expect((await w.next()).done).toBe(true);
  });

  it('watch("*") receives every group; both a group and a wildcard watcher get the event', async () => {
    const s = await h.open();
    const all = s.watch("*");
    const one = s.watch("b");
    await s.set("a", "1", "x");
    await s.set("b", "2", "y");
    expect((await take(all, 2)).map((e) => e.group)).toEqual(["a", "b"]);
    expect((await take(one, 1)).map((e) => e.key)).toEqual(["2"]);
  });

  it("a store opened with migrate: false delivers its first change, and another store's changes after it", async () => {
    const db = await h.freshDatabase();
    await db.migrate(stateMigrations);
    const writer = await h.openOn(db, { purgeIntervalMs: 0 });
    await writer.set("g", "before", "0");
    const s = await h.openOn(db, { migrate: false, purgeIntervalMs: 0, changePollIntervalMs: 0 });
    const { events } = recordEvents(s);
    await s.set("g", "a", "1");
    await writer.set("g", "other", "2");
    await s.set("g", "b", "3");
    expect(events.map((e) => e.key)).toEqual(["a", "other", "b"]);
    // Over a database whose tables do not exist yet, the first change after they do is delivered.
    const bare = await h.freshDatabase();
    const early = await h.openOn(bare, { migrate: false, purgeIntervalMs: 0, changePollIntervalMs: 0 });
    const late = recordEvents(early);
    await bare.migrate(stateMigrations);
    await early.set("g", "first", "1");
    expect(late.events.map((e) => e.key)).toEqual(["first"]);
  });

  it("deleteGroup emits one delete_group with an empty key; nothing when the group was empty", async () => {
    const s = await h.open();
    await s.set("g", "1", "v");
    await s.set("g", "2", "v");
    const { events } = recordEvents(s);
    await s.deleteGroup("g");
    await s.deleteGroup("g");
    expect(events).toEqual([
      { type: "delete_group", group: "g", key: "", timestamp: h.clock.now(), version: expect.any(Number) },
    ]);
    expect(events[0]?.version).toBe(await s.version());
  });

  it("deletePrefix emits one delete_group per removed group", async () => {
    const s = await h.open();
    await s.set("t:a", "1", "v");
    await s.set("t:a", "2", "v");
    await s.set("t:b", "1", "v");
    await s.set("u", "1", "v");
    const { events } = recordEvents(s);
    await s.deletePrefix("t:");
    expect(events.map((e) => `${e.type}:${e.group}`)).toEqual(["delete_group:t:a", "delete_group:t:b"]);
  });

  it("events carry the clock's timestamp", async () => {
    const s = await h.open();
    const { events } = recordEvents(s);
    h.clock.advance(1234);
    await s.set("g", "k", "v");
    expect(events[0]?.timestamp).toBe(h.clock.now());
  });

  it("a full buffer drops new events and counts them (24 writes, buffer 16)", async () => {
    const s = await h.open();
    const w = s.watch("g");
    for (let i = 0; i < 24; i++) await s.set("g", `k${i}`, "v");
    expect(w.dropped).toBe(8);
    const got = await take(w, 16);
    expect(got.map((e) => e.key)).toEqual(Array.from({ length: 16 }, (_, i) => `k${i}`));
    await w.close();
    expect((await w.next()).done).toBe(true);
  });

  it("bufferSize is configurable per watcher and per store", async () => {
    const s = await h.open({ watchBufferSize: 2 });
    const small = s.watch("g");
    const big = s.watch("g", { bufferSize: 5 });
    for (let i = 0; i < 6; i++) await s.set("g", `k${i}`, "v");
    expect(small.dropped).toBe(4);
    expect(big.dropped).toBe(1);
    for (const bufferSize of [0, -1, 1.5, Number.NaN]) {
      expect(() => s.watch("g", { bufferSize })).toThrow(InvalidArgumentError);
    }
    expect(() => s.watch("g", { bufferSize: 0 })).toThrow(/^bufferSize must be a positive integer, got 0$/);
    expect(() => s.watch(5 as unknown as string)).toThrow(InvalidArgumentError);
  });

  it("a waiting consumer gets the event without buffering", async () => {
    const s = await h.open();
    const w = s.watch("g", { bufferSize: 1 });
    const pending = w.next();
    await s.set("g", "a", "1");
    await s.set("g", "b", "2");
    await s.set("g", "c", "3");
    expect((await pending).value).toMatchObject({ key: "a" });
    expect((await w.next()).value).toMatchObject({ key: "b" });
    expect(w.dropped).toBe(1);
  });

  it("several pending next() calls are served in order and all end on close", async () => {
    const s = await h.open();
    const w = s.watch("g");
    const a = w.next();
    const b = w.next();
    const c = w.next();
    await s.set("g", "1", "v");
    await s.set("g", "2", "v");
    expect((await a).value).toMatchObject({ key: "1" });
    expect((await b).value).toMatchObject({ key: "2" });
    await w.close();
    expect(await c).toEqual({ value: undefined, done: true });
  });

  it("unwatch and break end a watcher; unwatch is idempotent", async () => {
    const s = await h.open();
    const w = s.watch("g");
    await s.unwatch(w);
    await s.unwatch(w);
    await s.set("g", "k", "v");
    expect((await w.next()).done).toBe(true);
    const w2 = s.watch("g");
    await s.set("g", "a", "1");
    for await (const e of w2) {
      expect(e.key).toBe("a");
      break;
    }
    expect(w2.closed).toBe(true);
  });

  it("close ends every watcher, drops callbacks; watch on a closed store is already ended", async () => {
    const s = await h.open();
    const w = s.watch("*");
    const pending = w.next();
    const cb = vi.fn();
    s.onChange(cb);
    await s.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    const late = s.watch("g");
    expect((await late.next()).done).toBe(true);
    expect(typeof s.onChange(() => {})).toBe("function");
    expect(cb).not.toHaveBeenCalled();
  });

  it("onChange returns an idempotent unsubscribe", async () => {
    const s = await h.open();
    const seen: string[] = [];
    const stop = s.onChange((e) => seen.push(e.key));
    await s.set("g", "a", "1");
    stop();
    stop();
    await s.set("g", "b", "2");
    expect(seen).toEqual(["a"]);
  });

  it("callbacks may subscribe and unsubscribe re-entrantly", async () => {
    const s = await h.open();
    const seen: string[] = [];
    let inner: (() => void) | undefined;
    const outer = s.onChange((e) => {
      seen.push(`outer:${e.key}`);
      inner ??= s.onChange((e2) => seen.push(`inner:${e2.key}`));
      if (e.key === "b") outer();
      const w = s.watch("g");
      void w.close();
    });
    await s.set("g", "a", "1");
    await s.set("g", "b", "2");
    await s.set("g", "c", "3");
    expect(seen).toEqual(["outer:a", "outer:b", "inner:b", "inner:c"]);
    inner?.();
    await s.set("g", "d", "4");
    expect(seen).toHaveLength(4);
  });

  it("a throwing callback does not break the writer or other callbacks; the error is reported", async () => {
    const reported: unknown[] = [];
    const s = await h.open({ onListenerError: (err) => reported.push(err) });
    const seen: string[] = [];
    s.onChange(() => {
      throw new Error("boom");
    });
    s.onChange((e) => seen.push(e.key));
    const written = await s.set("g", "k", "v");
    expect(written).toBe(await s.version());
    expect(await s.get("g", "k")).toBe("v");
    expect(seen).toEqual(["k"]);
    expect(reported).toHaveLength(1);
    expect((reported[0] as Error).message).toBe("boom");
  });

  it("concurrent watch/unwatch while writing never throws or leaks", async () => {
    const s = await h.open();
    const writers = Array.from({ length: 5 }, async (_, i) => {
      for (let j = 0; j < 20; j++) await s.set("g", `w${i}-${j}`, "v");
    });
    const watchers = Array.from({ length: 5 }, async () => {
      for (let j = 0; j < 20; j++) {
        const w = s.watch(j % 2 === 0 ? "g" : "*");
        await Promise.resolve();
        await w.close();
      }
    });
    await Promise.all([...writers, ...watchers]);
    expect(await s.count("g")).toBe(100);
  });
});
