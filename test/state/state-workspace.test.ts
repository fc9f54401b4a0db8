import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { ClosedError, InvalidArgumentError, InvalidKeyError, ReadOnlyError } from "../../src/errors.js";
import { useTempDir } from "../support/temp-dir.js";
import { forEachEngine, recordEvents, START } from "./state-harness.js";

const root = useTempDir("storeroom-workspace-");
let n = 0;
const stateDir = () => join(root, `state-${n++}`);

forEachEngine("StateStore workspaces", (h) => {
  it("a second close() during the first resolves only once the store is shut down", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("w");
    const watcher = s.watch("g");
    const first = s.close();
    await s.close();
    expect(ws.closed).toBe(true);
    expect(watcher.closed).toBe(true);
    await first;
  });

  it("creates a scratch SQLite file, buffers puts, counts and aggregates by kind", async () => {
    const dir = stateDir();
    const s = await h.open({ workspaceStateDirectory: dir });
    const ws = await s.newWorkspace("import-1");
    expect(ws.name).toBe("import-1");
    expect(ws.databasePath).toBe(join(dir, "import-1.sqlite"));
    expect(existsSync(ws.databasePath)).toBe(true);
    await ws.put("like", { user: "a" });
    await ws.put("like", { user: "b" });
    await ws.put("share");
    expect(await ws.count()).toBe(3);
    expect(await ws.aggregate()).toEqual({ like: 2, share: 1 });
  });

  it("query runs read-only SQL on the buffer, including the entries view", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("q");
    await ws.put("k", { v: 1 });
    expect(await ws.query("SELECT id, kind, data, created_at FROM entries")).toEqual([
      { id: 1, kind: "k", data: '{"v":1}', created_at: START },
    ]);
    await expect(ws.query("DELETE FROM workspace_entries")).rejects.toBeInstanceOf(ReadOnlyError);
    expect(await ws.count()).toBe(1);
  });

  it("put validates kind and stores null data as {}", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("p");
    await expect(ws.put("")).rejects.toBeInstanceOf(InvalidArgumentError);
    // A kind cut inside a surrogate pair would come back from aggregate() as other text.
    await expect(ws.put("row\uD83D")).rejects.toThrow(/^workspace kind must be well-formed Unicode/);
    expect(await ws.count()).toBe(0);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(ws.put("k", cyclic)).rejects.toBeInstanceOf(InvalidArgumentError);
    await ws.put("k", null);
    expect(await ws.query("SELECT data FROM entries")).toEqual([{ data: "{}" }]);
  });

  it("commit writes one journal row and the summary entry, emits set, and removes the file", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("session-7");
    for (let i = 0; i < 40; i++) await ws.put(i % 4 === 0 ? "share" : "like", { i });
    const { events } = recordEvents(s);
    expect(await ws.commit()).toEqual({ like: 30, share: 10 });
    expect(JSON.parse(await s.get("workspace:session-7", "summary"))).toEqual({ like: 30, share: 10 });
    const journal = await s.queryJournal();
    expect(journal).toHaveLength(1);
    expect(journal[0]).toMatchObject({
      measurement: "session-7",
      fields: { like: 30, share: 10 },
      tags: { workspace: "session-7" },
    });
    expect(events).toEqual([
      {
        type: "set",
        group: "workspace:session-7",
        key: "summary",
        value: '{"like":30,"share":10}',
        timestamp: START,
        version: expect.any(Number),
      },
    ]);
    expect(existsSync(ws.databasePath)).toBe(false);
    expect(existsSync(`${ws.databasePath}-wal`)).toBe(false);
    await expect(ws.put("x")).rejects.toBeInstanceOf(ClosedError);
  });

  it("discard deletes the file without committing and is idempotent", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("d");
    await ws.put("k");
    await ws.discard();
    await ws.discard();
    expect(existsSync(ws.databasePath)).toBe(false);
    expect(await s.queryJournal()).toEqual([]);
    await expect(ws.count()).rejects.toBeInstanceOf(ClosedError);
  });

  it("validates names and refuses an existing workspace", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    for (const bad of ["", ".", "..", "a/b", "a\\b", "../escape"]) {
      await expect(s.newWorkspace(bad), bad).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await s.newWorkspace("once");
    await expect(s.newWorkspace("once")).rejects.toThrow(/already exists/);
  });

  it("refuses a name too long for a file name with InvalidKeyError and creates nothing", async () => {
    const dir = stateDir();
    const s = await h.open({ workspaceStateDirectory: dir });
    for (const bad of ["x".repeat(241), "é".repeat(121)]) {
      await expect(s.newWorkspace(bad)).rejects.toMatchObject({
        code: "INVALID_KEY",
        message: expect.stringMatching(/^workspace name must be at most 240 bytes/),
      });
    }
    expect(existsSync(dir)).toBe(false);
    const longest = await s.newWorkspace("x".repeat(240));
    await longest.put("row");
    expect(await longest.commit()).toEqual({ row: 1 });
  });

  it("close keeps the file; recoverOrphans finds it and its data, and it can be committed", async () => {
    const dir = stateDir();
    const db = await h.freshDatabase();
    const first = await h.openOn(db, { workspaceStateDirectory: `${dir}//` });
    const ws = await first.newWorkspace("crashy");
    await ws.put("k");
    await ws.put("k");
    await ws.close();
    expect(existsSync(ws.databasePath)).toBe(true);
    await first.close();

    const second = await h.openOn(db, { workspaceStateDirectory: dir });
    const found = await second.recoverOrphans();
    expect(found.quarantined).toEqual([]);
    expect(found.workspaces.map((w) => w.name)).toEqual(["crashy"]);
    const orphan = found.workspaces[0];
    expect(await orphan?.aggregate()).toEqual({ k: 2 });
    await orphan?.commit();
    expect(JSON.parse(await second.get("workspace:crashy", "summary"))).toEqual({ k: 2 });
    expect((await second.recoverOrphans(`${dir}/`)).workspaces).toEqual([]);
  });

  it("recoverOrphans skips workspaces this store has open and lists others sorted", async () => {
    const dir = stateDir();
    const s = await h.open({ workspaceStateDirectory: dir });
    const open = await s.newWorkspace("open-one");
    const other = await h.open({ workspaceStateDirectory: dir });
    for (const name of ["b", "a"]) await (await other.newWorkspace(name)).close();
    const found = await s.recoverOrphans();
    expect(found.workspaces.map((w) => w.name)).toEqual(["a", "b"]);
    expect(open.closed).toBe(false);
  });

  it("corrupt workspace files are moved to quarantine/ and reported, never deleted", async () => {
    const dir = stateDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "broken.sqlite"), "this is not a sqlite database, just text ".repeat(200));
    const s = await h.open({ workspaceStateDirectory: dir });
    await (await s.newWorkspace("good")).close();
    const other = await h.open({ workspaceStateDirectory: dir });
    const found = await other.recoverOrphans();
    expect(found.workspaces.map((w) => w.name)).toEqual(["good"]);
    expect(found.quarantined).toHaveLength(1);
    expect(found.quarantined[0]).toMatchObject({ name: "broken", path: join(dir, "quarantine", "broken.sqlite") });
    expect(found.quarantined[0]?.reason).toMatch(/not a database|file is not a database/i);
    expect(existsSync(join(dir, "broken.sqlite"))).toBe(false);
    expect(readdirSync(join(dir, "quarantine"))).toEqual(["broken.sqlite"]);
  });

  it("recoverOrphans of a missing directory finds nothing", async () => {
    const s = await h.open({ workspaceStateDirectory: join(root, "does-not-exist") });
    expect(await s.recoverOrphans()).toEqual({ workspaces: [], quarantined: [] });
  });

  it("closing the store closes open workspaces but keeps their files", async () => {
    const s = await h.open({ workspaceStateDirectory: stateDir() });
    const ws = await s.newWorkspace("kept");
    await ws.put("k");
    await s.close();
    expect(ws.closed).toBe(true);
    expect(existsSync(ws.databasePath)).toBe(true);
  });
});
