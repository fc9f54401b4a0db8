import { existsSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { openSqlite } from "../../src/sql/index.js";
import {
  DEFAULT_PURGE_INTERVAL_MS,
  DEFAULT_WORKSPACE_STATE_DIRECTORY,
  normaliseStateConfig,
  StateStore,
} from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";

describe("StateStore config validation and normalisation", () => {
  const dir = useTempDir("storeroom-state-config-");

  it("fills the seed's defaults", () => {
    const c = normaliseStateConfig({ databasePath: ":memory:" });
    expect(c.purgeIntervalMs).toBe(DEFAULT_PURGE_INTERVAL_MS);
    expect(c.purgeIntervalMs).toBe(60_000);
    expect(c.workspaceStateDirectory).toBe(DEFAULT_WORKSPACE_STATE_DIRECTORY);
    expect(c.bucketName).toBe("store");
    expect(c.journal).toBeUndefined();
    expect(c.watchBufferSize).toBe(16);
  });

  it("purgeIntervalMs 0 means the default; positive values are kept", () => {
    expect(normaliseStateConfig({ databasePath: ":memory:", purgeIntervalMs: 0 }).purgeIntervalMs).toBe(60_000);
    expect(normaliseStateConfig({ databasePath: ":memory:", purgeIntervalMs: 25 }).purgeIntervalMs).toBe(25);
  });

  it("strips trailing slashes from the workspace state directory", () => {
    expect(
      normaliseStateConfig({ databasePath: ":memory:", workspaceStateDirectory: "/tmp/state///" })
        .workspaceStateDirectory,
    ).toBe("/tmp/state");
    expect(
      normaliseStateConfig({ databasePath: ":memory:", workspaceStateDirectory: "/" }).workspaceStateDirectory,
    ).toBe("/");
  });

  it("rejects an empty or missing database path", () => {
    expect(() => normaliseStateConfig({ databasePath: "" })).toThrow(/database path is empty/);
    expect(() => normaliseStateConfig({})).toThrow(InvalidArgumentError);
  });

  it("rejects both databasePath and database", async () => {
    const db = await openSqlite(":memory:");
    expect(() => normaliseStateConfig({ databasePath: ":memory:", database: db })).toThrow(
      /either databasePath or database/,
    );
    await db.close();
  });

  it("rejects a negative or non-finite purge interval", () => {
    expect(() => normaliseStateConfig({ databasePath: ":memory:", purgeIntervalMs: -1 })).toThrow(
      /purge interval must be zero or positive/,
    );
    expect(() => normaliseStateConfig({ databasePath: ":memory:", purgeIntervalMs: Number.NaN })).toThrow(
      InvalidArgumentError,
    );
  });

  it("rejects a bad watch buffer size", () => {
    expect(() => normaliseStateConfig({ databasePath: ":memory:", watchBufferSize: 0 })).toThrow(/watchBufferSize/);
  });

  it("a partial journal config names the missing field with an example", () => {
    const base = { databasePath: ":memory:" };
    expect(() => normaliseStateConfig({ ...base, journal: { organisation: "core", bucketName: "events" } })).toThrow(
      /endpoint URL is empty; use values like "http:\/\/127.0.0.1:8086"/,
    );
    expect(() =>
      normaliseStateConfig({ ...base, journal: { endpointUrl: "http://127.0.0.1:8086", bucketName: "events" } }),
    ).toThrow(/organisation is empty; use values like "core"/);
    expect(() =>
      normaliseStateConfig({ ...base, journal: { endpointUrl: "http://127.0.0.1:8086", organisation: "core" } }),
    ).toThrow(/bucket name is empty; use values like "events"/);
  });

  it("an all-empty journal config means no journal", () => {
    expect(normaliseStateConfig({ databasePath: ":memory:", journal: {} }).journal).toBeUndefined();
  });

  it("a full journal config sets the bucket", () => {
    const c = normaliseStateConfig({
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
    expect(rows).toEqual([{ id: "state/001-entries" }, { id: "state/002-journal" }]);
    await db.close();
  });

  it("open on an unreadable path fails with a typed error", async () => {
    await expect(StateStore.open({ databasePath: join(dir, "missing-dir", "x", "s.db") })).rejects.toMatchObject({
      name: expect.stringMatching(/Error$/),
    });
  });
});
