import { expect, it } from "vitest";
import { NotFoundError, TransactionError } from "../../src/errors.js";
import type { StateTransaction } from "../../src/state/index.js";
import { StateStore } from "../../src/state/index.js";
import { forEachEngine, recordEvents } from "./state-harness.js";

forEachEngine("StateStore transactions", (h) => {
  it("commits several writes together and returns fn's result", async () => {
    const s = await h.open();
    const result = await s.transaction(async (tx) => {
      await tx.set("g", "a", "1");
      await tx.set("g", "b", "2");
      await tx.setWithTtl("g", "c", "3", 1_000);
      return "done";
    });
    expect(result).toBe("done");
    expect(await s.getAll("g")).toEqual(
      new Map([
        ["a", "1"],
        ["b", "2"],
        ["c", "3"],
      ]),
    );
  });

  it("rolls back everything when fn throws and rethrows the same error", async () => {
    const s = await h.open();
    await s.set("g", "keep", "v");
    const boom = new Error("boom");
    const err = await s
      .transaction(async (tx) => {
        await tx.set("g", "a", "1");
        await tx.delete("g", "keep");
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(await s.getAll("g")).toEqual(new Map([["keep", "v"]]));
  });

  it("reads inside see the transaction's own pending writes", async () => {
    const s = await h.open();
    await s.transaction(async (tx) => {
      await tx.set("g", "a", "1");
      expect(await tx.get("g", "a")).toBe("1");
      expect(await tx.exists("g", "a")).toBe(true);
      expect(await tx.count("g")).toBe(1);
      expect(await tx.groups()).toEqual(["g"]);
      expect(await tx.getAll("g")).toEqual(new Map([["a", "1"]]));
      await tx.delete("g", "a");
      await expect(tx.get("g", "a")).rejects.toBeInstanceOf(NotFoundError);
      expect(await tx.groupExists("g")).toBe(false);
    });
  });

  it("readers outside do not see uncommitted writes", async () => {
    const s = await h.open();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let inside!: () => void;
    const started = new Promise<void>((r) => {
      inside = r;
    });
    const tx = s.transaction(async (t) => {
      await t.set("g", "k", "pending");
      inside();
      await gate;
    });
    await started;
    expect(await s.exists("g", "k")).toBe(false);
    release();
    await tx;
    expect(await s.get("g", "k")).toBe("pending");
  });

  it("deleteGroup and deletePrefix inside a transaction are atomic with other writes", async () => {
    const s = await h.open();
    await s.set("a:1", "k", "v");
    await s.set("a:2", "k", "v");
    await s
      .transaction(async (tx) => {
        await tx.deletePrefix("a:");
        await tx.deleteGroup("missing");
        throw new Error("undo");
      })
      .catch(() => undefined);
    expect(await s.groups()).toEqual(["a:1", "a:2"]);
  });

  it("delivers events only after commit, in order", async () => {
    const s = await h.open();
    const { events } = recordEvents(s);
    await s.transaction(async (tx) => {
      await tx.set("g", "a", "1");
      await tx.delete("g", "a");
      expect(events).toEqual([]);
    });
    expect(events.map((e) => `${e.type}:${e.key}`)).toEqual(["set:a", "delete:a"]);
  });

  it("delivers no events after a rollback", async () => {
    const s = await h.open();
    const w = s.watch("*");
    const { events } = recordEvents(s);
    await s
      .transaction(async (tx) => {
        await tx.set("g", "a", "1");
        throw new Error("no");
      })
      .catch(() => undefined);
    await s.set("g", "after", "1");
    expect(events.map((e) => e.key)).toEqual(["after"]);
    expect((await w.next()).value).toMatchObject({ key: "after" });
  });

  it("purgeExpired and lazy expiry inside a transaction", async () => {
    const s = await h.open();
    await s.setWithTtl("g", "a", "1", 5);
    await s.setWithTtl("g", "b", "1", 5);
    h.clock.advance(5);
    const { events } = recordEvents(s);
    await s.transaction(async (tx) => {
      await expect(tx.get("g", "a")).rejects.toBeInstanceOf(NotFoundError);
      expect(await tx.purgeExpired()).toBe(1);
    });
    expect(events.map((e) => `${e.type}:${e.key}`)).toEqual(["delete:a", "delete:b"]);
  });

  it("the tx mirrors the read API: page, stream, split, fields, render, countAll", async () => {
    const s = await h.open();
    await s.transaction(async (tx) => {
      await tx.set("g", "list", "a,b");
      await tx.set("g", "words", "x  y");
      expect(await tx.getPage("g", 0, 1)).toEqual([{ key: "list", value: "a,b" }]);
      const keys: string[] = [];
      for await (const e of tx.all("g")) keys.push(e.key);
      expect(keys).toEqual(["list", "words"]);
      expect(await tx.getSplit("g", "list", ",")).toEqual(["a", "b"]);
      expect(await tx.getFields("g", "words")).toEqual(["x", "y"]);
      expect(await tx.render("{{ .list }}", "g")).toBe("a,b");
      expect(await tx.countAll("g")).toBe(2);
    });
  });

  it("the tx is unusable after the callback settled", async () => {
    const s = await h.open();
    let leaked: StateTransaction | undefined;
    await s.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked?.set("g", "k", "v")).rejects.toBeInstanceOf(TransactionError);
    expect(await s.exists("g", "k")).toBe(false);
  });

  it("concurrent transactions each apply completely", async () => {
    const s = await h.open();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        s.transaction(async (tx) => {
          for (let j = 0; j < 10; j++) await tx.set(`t${i}`, `k${j}`, "v");
        }),
      ),
    );
    expect(await s.countAll("t")).toBe(80);
  });

  it("calling the store itself inside its own transaction throws TransactionError on every path and writes nothing", async () => {
    const s = await h.open();
    await s.set("g", "seed", "1");
    const scoped = s.scoped("ns");
    const selfCalls: [string, () => Promise<unknown>][] = [
      ["set", () => s.set("g", "k", "v")],
      ["setWithTtl", () => s.setWithTtl("g", "k", "v", 1000)],
      ["get", () => s.get("g", "seed")],
      ["delete", () => s.delete("g", "seed")],
      ["getAll", () => s.getAll("g")],
      ["render", () => s.render("{{ .seed }}", "g")],
      ["deleteGroup", () => s.deleteGroup("g")],
      ["nested transaction", () => s.transaction(async (tx) => tx.set("g", "k", "v"))],
      ["scoped set", () => scoped.set("k", "v")],
      ["scoped transaction", () => scoped.transaction(async (tx) => tx.set("k", "v"))],
      ["commitToJournal", () => s.commitToJournal("m")],
    ];
    for (const [name, call] of selfCalls) {
      const outcome = await s
        .transaction(async (tx) => {
          await tx.set("g", "inside", name);
          // A detached continuation still counts as inside while the callback runs.
          return await new Promise((resolve) => setImmediate(() => resolve(call()))).then(
            () => "no error",
            (err: unknown) => err,
          );
        })
        .catch((err: unknown) => err);
      expect(outcome, name).toBeInstanceOf(TransactionError);
      expect((outcome as TransactionError).message, name).toMatch(/inside its own transaction/);
    }
    // The callbacks' own writes committed; none of the self-calls wrote anything.
    expect(await s.get("g", "seed")).toBe("1");
    expect(await s.exists("g", "k")).toBe(false);
    expect(await scoped.exists("k")).toBe(false);
    expect(await s.queryJournal()).toEqual([]);
  });

  it("the same store stays usable from outside while a transaction runs, and after it", async () => {
    const s = await h.open();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const tx = s.transaction(async (t) => {
      await t.set("g", "a", "1");
      entered();
      await gate;
    });
    await inside;
    const outside = s.set("g", "b", "2");
    release();
    await Promise.all([tx, outside]);
    expect(await s.getAll("g")).toEqual(
      new Map([
        ["a", "1"],
        ["b", "2"],
      ]),
    );
    // An onChange callback runs after commit, outside the transaction: it may call the store.
    const seen: string[] = [];
    s.onChange((e) => {
      if (e.key === "c") void s.get("g", "c").then((v) => seen.push(v));
    });
    await s.transaction(async (t) => t.set("g", "c", "3"));
    await expect.poll(() => seen, { timeout: 10_000 }).toEqual(["3"]);
  });

  if (h.engine === "sqlite") {
    it("a store opened from a database path detects self-calls too", async () => {
      const s = await StateStore.open({ databasePath: ":memory:" });
      try {
        await expect(s.transaction(async () => s.set("g", "k", "v"))).rejects.toBeInstanceOf(TransactionError);
        expect(await s.exists("g", "k")).toBe(false);
      } finally {
        await s.close();
      }
    });
  }
});
