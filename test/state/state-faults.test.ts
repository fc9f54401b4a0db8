import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CorruptDatabaseError,
  isStoreError,
  ManualClock,
  NotFoundError,
  openSqlite,
  QuotaExceededError,
  StateStore,
  StoreError,
} from "../../src/index.js";
import { useTempDir } from "../support/temp-dir.js";

describe("sqlite: state faults are typed errors, never silent", () => {
  const dir = useTempDir("storeroom-state-faults-");

  it("opening a file that is not a SQLite database throws CorruptDatabaseError", async () => {
    const path = join(dir, "garbage.db");
    writeFileSync(path, "definitely not sqlite ".repeat(500));
    await expect(StateStore.open({ databasePath: path })).rejects.toBeInstanceOf(CorruptDatabaseError);
  });

  it("a table dropped underneath the store surfaces as a StoreError, not as NotFound", async () => {
    const db = await openSqlite(join(dir, "dropped.db"));
    const s = await StateStore.open({ database: db });
    await s.set("g", "k", "v");
    await db.run("DROP TABLE entries");
    const err = await s.get("g", "k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).not.toBeInstanceOf(NotFoundError);
    await expect(s.set("g", "k", "v")).rejects.toBeInstanceOf(StoreError);
    await s.close();
    await db.close();
  });

  it("a closed underlying database makes operations throw ClosedError", async () => {
    const db = await openSqlite(join(dir, "closed.db"));
    const s = await StateStore.open({ database: db });
    await db.close();
    await expect(s.get("g", "k")).rejects.toMatchObject({ code: "CLOSED" });
    await s.close();
  });
});

describe("end to end through the public package entry", () => {
  const dir = useTempDir("storeroom-state-e2e-");

  it("a new user's session: config, TTL, scoped quota, watch, journal, reopen", async () => {
    const clock = new ManualClock(Date.parse("2026-03-01T12:00:00Z"));
    const path = join(dir, "app.db");
    const state = await StateStore.open({ databasePath: path, clock, workspaceStateDirectory: join(dir, "ws") });
    const changes = state.watch("*");

    await state.set("config", "theme", "dark");
    await state.setWithTtl("session", "alice", "token-1", 30 * 60_000);
    const tenant = state.scoped("acme", { maxKeys: 2 });
    await tenant.set("plan", "pro");
    await tenant.setIn("limits", "seats", "10");
    const quota = await tenant.set("extra", "x").catch((e: unknown) => e);
    expect(quota).toBeInstanceOf(QuotaExceededError);
    expect(isStoreError(quota, "QUOTA_EXCEEDED")).toBe(true);

    expect((await changes.next()).value).toMatchObject({ type: "set", group: "config", key: "theme" });
    clock.advance(31 * 60_000);
    await expect(state.get("session", "alice")).rejects.toBeInstanceOf(NotFoundError);

    const ws = await state.newWorkspace("import");
    await ws.put("row", { id: 1 });
    await ws.put("row", { id: 2 });
    await ws.commit();
    await state.commitToJournal("logins", { count: 1 }, { user: "alice" });
    const logins = await state.queryJournal(
      'from(bucket: "store") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "logins")',
    );
    expect(logins.map((r) => r.tags)).toEqual([{ user: "alice" }]);
    await state.close();

    const again = await StateStore.open({ databasePath: path, clock });
    expect(await again.get("config", "theme")).toBe("dark");
    expect(await again.scoped("acme").groups()).toEqual(["default", "limits"]);
    expect(JSON.parse(await again.get("workspace:import", "summary"))).toEqual({ row: 2 });
    expect(await again.render("theme={{ .theme }}", "config")).toBe("theme=dark");
    await again.close();
  });
});
