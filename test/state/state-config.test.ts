import { existsSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ManualClock, ManualScheduler } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { openSqlite, tableExists } from "../../src/sql/index.js";
import {
  DEFAULT_PURGE_INTERVAL_MS,
  DEFAULT_WORKSPACE_STATE_DIRECTORY,
  normaliseStateConfig,
  normalizeStateStoreOptions,
  StateStore,
  type StateStoreOptions,
} from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";

describe("StateStore config validation and normalisation", () => {
  const dir = useTempDir("storeroom-state-config-");

  it("fills the defaults", () => {
    const c = normalizeStateStoreOptions({ databasePath: ":memory:" });
    expect(c.purgeIntervalMs).toBe(DEFAULT_PURGE_INTERVAL_MS);
    expect(c.purgeIntervalMs).toBe(60_000);
    expect(c.workspaceStateDirectory).toBe(DEFAULT_WORKSPACE_STATE_DIRECTORY);
    expect(c.bucketName).toBe("store");
    expect(c.journal).toBeUndefined();
    expect(c.watchBufferSize).toBe(16);
    expect(c.migrate).toBe(true);
  });

  it("purgeIntervalMs 0 disables the purge timer; absent means the default; positive values are kept", async () => {
    expect(normalizeStateStoreOptions({ databasePath: ":memory:", purgeIntervalMs: 0 }).purgeIntervalMs).toBe(0);
    expect(normalizeStateStoreOptions({ databasePath: ":memory:" }).purgeIntervalMs).toBe(60_000);
    expect(normalizeStateStoreOptions({ databasePath: ":memory:", purgeIntervalMs: 25 }).purgeIntervalMs).toBe(25);
    const clock = new ManualScheduler(0);
    const off = await StateStore.open({ databasePath: ":memory:", purgeIntervalMs: 0, changePollIntervalMs: 0, clock });
    expect(clock.pending).toBe(0);
    await off.setWithTtl("g", "k", "v", 1);
    clock.advance(10 * 60_000);
    expect(await off.purgeExpired()).toBe(1);
    await off.close();
    const on = await StateStore.open({
      databasePath: ":memory:",
      purgeIntervalMs: 1_000,
      changePollIntervalMs: 0,
      clock,
    });
    expect(clock.pending).toBe(1);
    await on.close();
    expect(clock.pending).toBe(0);
    const following = await StateStore.open({ databasePath: ":memory:", purgeIntervalMs: 0, clock });
    expect(clock.pending).toBe(1);
    await following.close();
    expect(clock.pending).toBe(0);
  });

  it("a background purge or follow under way when close() begins ends quietly: no ClosedError reaches onListenerError", async () => {
    const clock = new ManualScheduler(0);
    const errors: unknown[] = [];
    const store = await StateStore.open({
      databasePath: ":memory:",
      purgeIntervalMs: 1_000,
      changePollIntervalMs: 1_000,
      clock,
      onListenerError: (err) => errors.push(err),
    });
    await store.setWithTtl("g", "k", "v", 1);
    // Both timers fire; their runs start, and close() begins before they reach the database.
    clock.advance(1_000);
    await store.close();
    expect(errors).toEqual([]);
  });

  it("migrate: false leaves the database untouched; the default migrates", async () => {
    const db = await openSqlite(":memory:");
    const bare = await StateStore.open({ database: db, migrate: false });
    await bare.close();
    expect(await tableExists(db, "entries")).toBe(false);
    const migrated = await StateStore.open({ database: db });
    await migrated.close();
    expect(await tableExists(db, "entries")).toBe(true);
    await db.close();
    expect(() => normalizeStateStoreOptions({ databasePath: ":memory:", migrate: "no" as unknown as boolean })).toThrow(
      /^migrate must be a boolean/,
    );
  });

  it("the deprecated names still work", () => {
    expect(normaliseStateConfig).toBe(normalizeStateStoreOptions);
  });

  it("strips trailing slashes from the workspace state directory", () => {
    expect(
      normalizeStateStoreOptions({ databasePath: ":memory:", workspaceStateDirectory: "/tmp/state///" })
        .workspaceStateDirectory,
    ).toBe("/tmp/state");
    expect(
      normalizeStateStoreOptions({ databasePath: ":memory:", workspaceStateDirectory: "/" }).workspaceStateDirectory,
    ).toBe("/");
  });

  it("rejects an empty or missing database path", () => {
    expect(() => normalizeStateStoreOptions({ databasePath: "" })).toThrow(/database path is empty/);
    expect(() => normalizeStateStoreOptions({})).toThrow(InvalidArgumentError);
  });

  it("rejects both databasePath and database", async () => {
    const db = await openSqlite(":memory:");
    expect(() => normalizeStateStoreOptions({ databasePath: ":memory:", database: db })).toThrow(
      /either databasePath or database/,
    );
    await db.close();
  });

  it("rejects a negative or non-finite purge interval", () => {
    expect(() => normalizeStateStoreOptions({ databasePath: ":memory:", purgeIntervalMs: -1 })).toThrow(
      /^purgeIntervalMs must be an integer/,
    );
    expect(() => normalizeStateStoreOptions({ databasePath: ":memory:", purgeIntervalMs: Number.NaN })).toThrow(
      InvalidArgumentError,
    );
  });

  it("rejects a bad watch buffer size", () => {
    expect(() => normalizeStateStoreOptions({ databasePath: ":memory:", watchBufferSize: 0 })).toThrow(
      /watchBufferSize/,
    );
  });

  it("refuses a clock, listener or workspace directory of the wrong kind, naming the option, instead of failing later", () => {
    const base = { databasePath: ":memory:" };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ clock: 5 }, /^clock must be a Clock \(an object with now\(\)\), got 5/],
      [{ clock: {} }, /^clock must be a Clock/],
      [{ onListenerError: 3 }, /^onListenerError must be a function/],
      [{ workspaceStateDirectory: "" }, /^workspaceStateDirectory must be a non-empty string/],
      [{ workspaceStateDirectory: 7 }, /^workspaceStateDirectory must be a non-empty string/],
      [{ watchBufferSize: 0 }, /^watchBufferSize must be a positive integer, got 0/],
      [{ watchBufferSize: 1.5 }, /^watchBufferSize must be a positive integer, got 1.5/],
    ];
    for (const [bad, message] of cases) {
      expect(() => normalizeStateStoreOptions({ ...base, ...bad } as StateStoreOptions)).toThrow(message);
      expect(() => normalizeStateStoreOptions({ ...base, ...bad } as StateStoreOptions)).toThrow(InvalidArgumentError);
    }
  });

  it("a partial journal config names the missing field with an example", () => {
    const base = { databasePath: ":memory:" };
    expect(() =>
      normalizeStateStoreOptions({ ...base, journal: { organisation: "core", bucketName: "events" } }),
    ).toThrow(/endpoint URL is empty; use values like "http:\/\/127.0.0.1:8086"/);
    expect(() =>
      normalizeStateStoreOptions({ ...base, journal: { endpointUrl: "http://127.0.0.1:8086", bucketName: "events" } }),
    ).toThrow(/organisation is empty; use values like "core"/);
    expect(() =>
      normalizeStateStoreOptions({ ...base, journal: { endpointUrl: "http://127.0.0.1:8086", organisation: "core" } }),
    ).toThrow(/bucket name is empty; use values like "events"/);
  });

  it("an all-empty journal config means no journal", () => {
    expect(normalizeStateStoreOptions({ databasePath: ":memory:", journal: {} }).journal).toBeUndefined();
  });

  it("a full journal config sets the bucket", () => {
    const c = normalizeStateStoreOptions({
      databasePath: ":memory:",
      journal: { endpointUrl: "http://127.0.0.1:8086", organisation: "core", bucketName: "events" },
    });
    expect(c.bucketName).toBe("events");
    expect(c.journal).toEqual({ endpointUrl: "http://127.0.0.1:8086", organisation: "core", bucketName: "events" });
  });

  it("open rejects bad config before touching the disk", async () => {
    const path = join(dir, "never.db");
    await expect(StateStore.open({ databasePath: path, purgeIntervalMs: -5 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(existsSync(path)).toBe(false);
  });

  it("databasePath opens a WAL SQLite file the store owns and closes", async () => {
    const path = join(dir, "owned.db");
    const s = await StateStore.open({
      databasePath: path,
      journal: { endpointUrl: "http://x", organisation: "o", bucketName: "b" },
    });
    expect(s.databasePath).toBe(path);
    expect(s.journalConfigured).toBe(true);
    expect(s.config.bucketName).toBe("b");
    await s.set("g", "k", "v");
    const peek = new BetterSqlite3(path, { readonly: true });
    expect(peek.pragma("journal_mode", { simple: true })).toBe("wal");
    peek.close();
    await s.close();
    const again = await StateStore.open({ databasePath: path });
    expect(again.journalConfigured).toBe(false);
    expect(await again.get("g", "k")).toBe("v");
    await again.close();
  });

  it("reopening applies no migration twice", async () => {
    const db = await openSqlite(join(dir, "twice.db"));
    const a = await StateStore.open({ database: db });
    await a.close();
    const b = await StateStore.open({ database: db, clock: new ManualClock(1) });
    await b.close();
    const rows = await db.all("SELECT id FROM storeroom_migrations WHERE set_name = 'state' ORDER BY ordinal");
    expect(rows).toEqual([
      { id: "state/001-entries" },
      { id: "state/002-journal" },
      { id: "state/003-versions" },
      { id: "state/004-version-from-change-log" },
    ]);
    await db.close();
  });

  it("open on an unreadable path fails with a typed error", async () => {
    await expect(StateStore.open({ databasePath: join(dir, "missing-dir", "x", "s.db") })).rejects.toMatchObject({
      name: expect.stringMatching(/Error$/),
    });
  });
});
