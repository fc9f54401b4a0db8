import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, isStoreError, VersionConflictError } from "../../src/errors.js";
import { StateStore } from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { forEachEngine, recordEvents } from "./state-harness.js";

async function conflictOf(p: Promise<unknown>): Promise<VersionConflictError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VersionConflictError);
  expect(isStoreError(err, "VERSION_CONFLICT")).toBe(true);
  return err as VersionConflictError;
}

forEachEngine("StateStore versioned writes", (h) => {
  it("every change gets a new, strictly increasing version; getEntry returns it with the expiry", async () => {
    const s = await h.open();
    const start = await s.version();
    const v1 = await s.set("g", "a", "1");
    const v2 = await s.setWithTtl("g", "b", "2", 1000);
    const v3 = await s.set("g", "a", "3");
    expect([v1, v2, v3]).toEqual([start + 1, start + 2, start + 3]);
    expect(await s.getEntry("g", "a")).toEqual({ group: "g", key: "a", value: "3", version: v3, expiresAt: null });
    expect(await s.getEntry("g", "b")).toMatchObject({ version: v2, expiresAt: h.clock.now() + 1000 });
    expect(await s.getEntry("g", "missing")).toBeNull();
    h.clock.advance(1000);
    expect(await s.getEntry("g", "b")).toBeNull();
    // The lazy expiry is a change too; deletes that find nothing take no version.
    expect(await s.version()).toBe(v3 + 1);
    expect(await s.delete("g", "nothing")).toBe(false);
    expect(await s.deleteGroup("none")).toBe(0);
    expect(await s.version()).toBe(v3 + 1);
  });

  it("set with ifVersion writes only at that version; null means create-only; conflicts change nothing", async () => {
    const s = await h.open();
    const v1 = await s.set("g", "k", "one", { ifVersion: null });
    const conflict = await conflictOf(s.set("g", "k", "again", { ifVersion: null }));
    expect(conflict.mismatches).toEqual([{ group: "g", key: "k", expected: null, actual: v1 }]);
    const v2 = await s.set("g", "k", "two", { ifVersion: v1 });
    const stale = await conflictOf(s.set("g", "k", "lost", { ifVersion: v1 }));
    expect(stale.mismatches).toEqual([{ group: "g", key: "k", expected: v1, actual: v2 }]);
    expect(await s.get("g", "k")).toBe("two");
    expect(await s.version()).toBe(v2);
    // An expired entry counts as absent.
    await s.set("g", "t", "x", { ttlMs: 10 });
    h.clock.advance(10);
    await s.set("g", "t", "fresh", { ifVersion: null });
    expect(await s.get("g", "t")).toBe("fresh");
    await expect(s.set("g", "k", "v", { ifVersion: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.set("g", "k", "v", { ttlMs: 0 })).rejects.toThrow(/^ttlMs must be a positive number/);
  });

  it("delete with ifVersion removes only the expected version", async () => {
    const s = await h.open();
    const v = await s.set("g", "k", "v");
    await conflictOf(s.delete("g", "k", { ifVersion: v + 100 }));
    expect(await s.exists("g", "k")).toBe(true);
    expect(await s.delete("g", "k", { ifVersion: v })).toBe(true);
    await conflictOf(s.delete("g", "k", { ifVersion: v }));
    expect(await s.delete("g", "k", { ifVersion: null })).toBe(false);
  });

  it("batch applies every operation or none, after all checks pass", async () => {
    const s = await h.open();
    const a = await s.set("acct", "a", "100");
    const b = await s.set("acct", "b", "5");
    const { events } = recordEvents(s);
    const transfer = (checks: { group: string; key: string; version: number | null }[]) =>
      s.batch(
        [
          { type: "set", group: "acct", key: "a", value: "90" },
          { type: "set", group: "acct", key: "b", value: "15" },
          { type: "delete", group: "acct", key: "absent" },
          { type: "set", group: "log", key: "t1", value: "a->b", ttlMs: 5000 },
        ],
        { checks },
      );
    const failed = await conflictOf(
      transfer([
        { group: "acct", key: "a", version: a },
        { group: "acct", key: "b", version: b + 1 },
        { group: "log", key: "t1", version: 7 },
      ]),
    );
    expect(failed.mismatches.map((m) => m.key)).toEqual(["b", "t1"]);
    expect(await s.getAll("acct")).toEqual(
      new Map([
        ["a", "100"],
        ["b", "5"],
      ]),
    );
    expect(events).toEqual([]);
    const done = await transfer([
      { group: "acct", key: "a", version: a },
      { group: "acct", key: "b", version: b },
      { group: "log", key: "t1", version: null },
    ]);
    expect(done.versions).toEqual([b + 1, b + 2, null, b + 3]);
    expect(done.version).toBe(b + 3);
    expect(await s.version()).toBe(b + 3);
    expect(await s.getAll("acct")).toEqual(
      new Map([
        ["a", "90"],
        ["b", "15"],
      ]),
    );
    expect(events.map((e) => `${e.version}:${e.type}:${e.key}`)).toEqual([
      `${b + 1}:set:a`,
      `${b + 2}:set:b`,
      `${b + 3}:set:t1`,
    ]);
  });

  it("an invalid batch throws InvalidArgumentError before writing anything", async () => {
    const s = await h.open();
    const bad = [
      [
        { type: "set", group: "g", key: "k", value: "v" },
        { type: "upsert", group: "g", key: "x" },
      ],
      [{ type: "set", group: "g", key: "k", value: 1 }],
      [{ type: "set", group: "g", key: "k", value: "v", ttlMs: -5 }],
    ] as never[];
    for (const ops of bad) await expect(s.batch(ops)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.batch([], { checks: [{ group: "g", key: "k", version: "1" as never }] })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    // A check without a version is a mistake, not "expected absent".
    const unversioned = [{ group: "g", key: "k" }] as never[];
    await expect(
      s.batch([{ type: "set", group: "g", key: "k", value: "v" }], { checks: unversioned }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/^checks\[0\]\.version/) });
    expect(await s.exists("g", "k")).toBe(false);
  });

  it("batch and ifVersion work inside a transaction and commit with it", async () => {
    const s = await h.open();
    const v = await s.set("g", "k", "1");
    await s.transaction(async (tx) => {
      const entry = await tx.getEntry("g", "k");
      await tx.set("g", "k", "2", { ifVersion: entry?.version ?? null });
      await tx.batch([{ type: "set", group: "g", key: "other", value: "x" }], {
        checks: [{ group: "g", key: "k", version: v + 1 }],
      });
    });
    expect(await s.getAll("g")).toEqual(
      new Map([
        ["k", "2"],
        ["other", "x"],
      ]),
    );
  });

  it("getEntries pages entries with versions, optionally by key prefix; count takes the same prefix", async () => {
    const s = await h.open();
    for (const k of ["b1", "a1", "b2", "b3", "c"]) await s.set("g", k, k.toUpperCase());
    const page = await s.getEntries("g", { keyPrefix: "b", offset: 1, limit: 5 });
    expect(page.map((e) => `${e.key}=${e.value}`)).toEqual(["b2=B2", "b3=B3"]);
    expect(page[0]?.version).toBeGreaterThan(0);
    expect(await s.count("g", "b")).toBe(3);
    expect(await s.count("g")).toBe(5);
    expect(await s.getEntries("g", { keyPrefix: "%" })).toEqual([]);
  });

  it("concurrent read-modify-write increments with ifVersion retries lose no update (fast-check)", async () => {
    const s = await h.open();
    let conflicts = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 5 }), async (workers, each) => {
        const key = `n-${Math.random().toString(36).slice(2)}`;
        const increment = async () => {
          for (;;) {
            const entry = await s.getEntry("counters", key);
            const next = String(Number(entry?.value ?? "0") + 1);
            try {
              await s.set("counters", key, next, { ifVersion: entry?.version ?? null });
              return;
            } catch (err) {
              if (!(err instanceof VersionConflictError)) throw err;
              conflicts++;
            }
          }
        };
        await Promise.all(
          Array.from({ length: workers }, async () => {
            for (let i = 0; i < each; i++) await increment();
          }),
        );
        expect(await s.get("counters", key)).toBe(String(workers * each));
      }),
      { numRuns: 12 },
    );
    // The workers really raced: some writes had to retry.
    expect(conflicts).toBeGreaterThan(0);
  });

  it("changesSince replays the log in order, filtered, in pages; reset once pruned past the version", async () => {
    const s = await h.open({ changeRetentionMs: 60_000 });
    const base = await s.version();
    await s.set("cfg:a", "x", "1");
    await s.set("other", "y", "2");
    await s.set("cfg:b", "z", "3");
    await s.delete("cfg:a", "x");
    const all = await s.changesSince(base);
    expect(all.changes.map((c) => `${c.version - base}:${c.type}:${c.group}`)).toEqual([
      "1:set:cfg:a",
      "2:set:other",
      "3:set:cfg:b",
      "4:delete:cfg:a",
    ]);
    expect(all).toMatchObject({ reset: false, version: base + 4, more: false });
    const cfg = await s.changesSince(base, { groupPrefix: "cfg:", limit: 2 });
    expect(cfg.changes.map((c) => c.key)).toEqual(["x", "z"]);
    expect(cfg.more).toBe(true);
    expect((await s.changesSince(base + 1, { group: "cfg:a" })).changes.map((c) => c.type)).toEqual(["delete"]);
    expect((await s.changesSince(base + 4)).changes).toEqual([]);
    expect((await s.changesSince(base + 5)).reset).toBe(true);
    h.clock.advance(60_001);
    await s.set("late", "k", "v");
    expect(await s.pruneChanges()).toBe(4);
    expect(await s.changesSince(base + 1)).toMatchObject({ reset: true, changes: [] });
    expect((await s.changesSince(base + 4)).changes.map((c) => c.group)).toEqual(["late"]);
  });

  it("changesSince refuses a group or prefix no engine could hold with InvalidArgumentError, like every read", async () => {
    const s = await h.open();
    const bad = [{ group: "cut\uD83D" }, { groupPrefix: "\uDC00" }];
    if (h.engine === "postgres") bad.push({ group: "a\u0000b" }, { groupPrefix: "\u0000" });
    for (const filter of bad) {
      await expect(s.changesSince(0, filter), JSON.stringify(filter)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it("changesSince returns at most 1000 changes by default and says more follow; groupPrefix is literal", async () => {
    const s = await h.open({ changeRetentionMs: 60_000 });
    const base = await s.version();
    await s.batch(
      Array.from({ length: 1001 }, (_, i) => ({ type: "set" as const, group: "bulk", key: `k${i}`, value: "v" })),
    );
    const first = await s.changesSince(base);
    expect(first.changes).toHaveLength(1000);
    expect(first.more).toBe(true);
    expect(first.changes[999]?.version).toBe(base + 1000);
    const rest = await s.changesSince(base + 1000);
    expect(rest).toMatchObject({ more: false, reset: false, version: base + 1001 });
    expect(rest.changes.map((c) => c.key)).toEqual(["k1000"]);
    await s.set("a%b", "x", "1");
    await s.set("axb", "x", "1");
    await s.set("a_b", "x", "1");
    const literal = await s.changesSince(base + 1001, { groupPrefix: "a%" });
    expect(literal.changes.map((c) => c.group)).toEqual(["a%b"]);
  });

  it("changeRetentionMs: 0 keeps no change log; versions stay unique when logged and unlogged stores share a database", async () => {
    const db = await h.freshDatabase();
    const logged = await h.openOn(db);
    const unlogged = await h.openOn(db, { changeRetentionMs: 0 });
    const seen: number[] = [];
    const off = unlogged.onChange((e) => seen.push(e.version));
    const v1 = await logged.set("g", "a", "1");
    const v2 = await unlogged.set("g", "b", "2");
    const { versions } = await unlogged.batch([
      { type: "set", group: "g", key: "c", value: "3" },
      { type: "delete", group: "g", key: "missing" },
      { type: "delete", group: "g", key: "a" },
    ]);
    const v5 = await logged.set("g", "d", "4");
    expect([v1, v2, ...versions, v5]).toEqual([v1, v1 + 1, v1 + 2, null, v1 + 3, v1 + 4]);
    expect(seen).toEqual([v1 + 1, v1 + 2, v1 + 3]);
    expect(await unlogged.version()).toBe(v1 + 4);
    // Only the logged store's changes are in the log; a reader from before the unlogged ones must reload.
    expect(await logged.changesSince(v1)).toMatchObject({ reset: true, changes: [] });
    expect((await logged.changesSince(v1 + 3)).changes.map((c) => c.key)).toEqual(["d"]);
    const rows = await db.all<{ version: number }>("SELECT version FROM state_changes ORDER BY version");
    expect(rows.map((r) => Number(r.version))).toEqual([v1, v1 + 4]);
    off();
    await unlogged.close();
    await logged.close();
  });

  it("scoped stores read versions and write conditionally inside their namespace", async () => {
    const s = await h.open();
    const tenant = s.scoped("t1", { maxKeys: 10 });
    const v = await tenant.setIn("cfg", "k", "1", { ifVersion: null });
    expect(await tenant.getEntryFrom("cfg", "k")).toMatchObject({ group: "cfg", key: "k", value: "1", version: v });
    await conflictOf(tenant.setIn("cfg", "k", "2", { ifVersion: v + 1 }));
    expect(await tenant.setIn("cfg", "k", "2", { ifVersion: v })).toBe(v + 1);
    await conflictOf(tenant.delete("cfg", "k", { ifVersion: v }));
    expect(await tenant.delete("cfg", "k", { ifVersion: v + 1 })).toBe(true);
    expect(await s.getEntry("t1:cfg", "k")).toBeNull();
  });

  it("changeRetentionMs must be 0 or a positive integer", async () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      await expect(h.open({ changeRetentionMs: bad })).rejects.toThrow(
        /^changeRetentionMs must be 0 \(no change log\)/,
      );
    }
  });
});

describe("sqlite: versioned writes from two processes on one file", () => {
  const dir = useTempDir("storeroom-versions-");
  const dist = fileURLToPath(new URL("../../dist/state/index.js", import.meta.url));

  it("compare-and-set increments lose nothing and versions stay unique", async () => {
    if (!existsSync(dist)) throw new Error("dist/state/index.js is missing: run `npm run build` (npm test does)");
    const path = join(dir, "shared.db");
    await (await StateStore.open({ databasePath: path })).close();
    // Each process increments the same counter with ifVersion retries and prints the versions it wrote.
    const script = `import { StateStore, } from ${JSON.stringify(dist)};
      const s = await StateStore.open({ databasePath: process.argv[1] });
      const written = [];
      let conflicts = 0;
      for (let i = 0; i < 40; i++) {
        for (;;) {
          const e = await s.getEntry("c", "n");
          try {
            written.push(await s.set("c", "n", String(Number(e?.value ?? "0") + 1), { ifVersion: e?.version ?? null }));
            break;
          } catch (err) {
            if (err.code !== "VERSION_CONFLICT") throw err;
            conflicts++;
          }
        }
      }
      await s.close();
      console.log(JSON.stringify({ written, conflicts }));`;
    const run = async () => {
      const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script, path], {
        timeout: 60_000,
      });
      return JSON.parse(stdout) as { written: number[]; conflicts: number };
    };
    const [a, b] = await Promise.all([run(), run()]);
    const check = await StateStore.open({ databasePath: path });
    try {
      expect(await check.get("c", "n")).toBe("80");
      const versions = [...a.written, ...b.written];
      expect(new Set(versions).size).toBe(80);
      expect(await check.version()).toBe(Math.max(...versions));
    } finally {
      await check.close();
    }
  });
});
