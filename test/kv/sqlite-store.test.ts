import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BusyError, ClosedError, InvalidArgumentError, isStoreError } from "../../src/errors.js";
import { openSqlStore, openStore, SqlStore, type SqlStoreOptions } from "../../src/kv/index.js";
import { type Database, openSqlite, tableExists } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-kv-sqlite-");
const bytes = (s: string) => new TextEncoder().encode(s);
let n = 0;
const freshPath = () => join(dir, `kv-${n++}.db`);

describe("sqlite kv driver", () => {
  it("keeps data across reopen of a file", async () => {
    const path = freshPath();
    const first = await openStore("sqlite", path);
    await first.update((tx) => tx.put("ns", "k\u0000", bytes("kept")));
    await first.close();
    const second = await openStore("sqlite", path);
    expect(new TextDecoder().decode(await second.view((tx) => tx.get("ns", "k\u0000")))).toBe("kept");
    await second.close();
  });

  it("stores one WITHOUT ROWID table with keys as UTF-8 bytes, NUL included", async () => {
    const path = freshPath();
    const store = await openStore("sqlite", path);
    await store.update(async (tx) => {
      await tx.put("n\u0000s", "a\u0000b", bytes("v"));
      await tx.put("n\u0000s", "😀", bytes("w"));
    });
    await store.close();
    const db = await openSqlite(path);
    const table = await db.get<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'kv'");
    expect(table?.sql).toMatch(/WITHOUT ROWID$/);
    const rows = await db.all<{ ns: string; key: string }>(
      "SELECT hex(ns) AS ns, hex(key) AS key FROM kv ORDER BY key",
    );
    expect(rows).toEqual([
      { ns: "6E0073", key: "610062" },
      { ns: "6E0073", key: "F09F9880" },
    ]);
    const applied = await db.all<{ id: string }>("SELECT id FROM storeroom_migrations WHERE set_name = 'kv'");
    expect(applied.map((r) => r.id)).toEqual(["kv/001-table"]);
    await db.close();
  });

  it("runs over a caller's database and leaves it open unless asked to close it", async () => {
    const db = await openSqlite(freshPath());
    const store = await SqlStore.open({ database: db });
    await store.update((tx) => tx.put("ns", "k", bytes("v")));
    await store.close();
    expect(db.closed).toBe(false);
    await expect(store.view((tx) => tx.get("ns", "k"))).rejects.toBeInstanceOf(ClosedError);
    const again = await SqlStore.open({ database: db, closeDatabase: true });
    expect(await again.view((tx) => tx.scan("ns", ""))).toHaveLength(1);
    await again.close();
    expect(db.closed).toBe(true);
  });

  it("returns values as Buffers that nothing else references", async () => {
    const store = await openStore("sqlite", freshPath());
    await store.update((tx) => tx.put("ns", "k", bytes("value")));
    const [first, second, scanned] = await store.view(async (tx) => [
      await tx.get("ns", "k"),
      await tx.get("ns", "k"),
      (await tx.scan("ns", ""))[0]?.value,
    ]);
    for (const value of [first, second, scanned]) expect(Buffer.isBuffer(value)).toBe(true);
    (first as Uint8Array).fill(0);
    expect(new TextDecoder().decode(second)).toBe("value");
    expect(new TextDecoder().decode(scanned)).toBe("value");
    expect(new TextDecoder().decode(await store.view((tx) => tx.get("ns", "k")))).toBe("value");
    await store.close();
  });

  it("close waits for admitted views and updates over a caller's database, then rejects new work", async () => {
    const db = await openSqlite(freshPath());
    const store = await SqlStore.open({ database: db });
    const log: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    let bothStarted: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      bothStarted = resolve;
    });
    const begin = () => {
      if (++started === 2) bothStarted();
    };
    const update = store.update(async (tx) => {
      begin();
      await gate;
      await tx.put("ns", "k", bytes("v"));
      log.push("update done");
    });
    const view = store.view(async (tx) => {
      begin();
      await gate;
      await tx.scan("ns", "");
      log.push("view done");
    });
    await running;
    const closing = store.close().then(() => log.push("closed"));
    await expect(store.update(async () => undefined)).rejects.toBeInstanceOf(ClosedError);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual([]);
    release();
    await Promise.all([update, view, closing]);
    expect(log.slice().sort()).toEqual(["closed", "update done", "view done"]);
    expect(log[2]).toBe("closed");
    expect(await db.get("SELECT count(*) AS n FROM kv")).toEqual({ n: 1 });
    await db.close();
  });

  it("stalls a second store on the same file in one process until the busy timeout, then fails with BusyError", async () => {
    const path = freshPath();
    const first = await SqlStore.open({ database: await openSqlite(path, { busyTimeoutMs: 50 }), closeDatabase: true });
    const second = await SqlStore.open({
      database: await openSqlite(path, { busyTimeoutMs: 50 }),
      closeDatabase: true,
    });
    let release: () => void = () => {};
    let holding: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const writer = first.update(async (tx) => {
      await tx.put("ns", "first", bytes("1"));
      holding();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await held;
    await expect(second.update((tx) => tx.put("ns", "second", bytes("2")))).rejects.toBeInstanceOf(BusyError);
    release();
    await writer;
    expect((await second.view((tx) => tx.scan("ns", ""))).map((e) => e.key)).toEqual(["first"]);
    await first.close();
    await second.close();
  });

  it("migrate: false skips the kv table; bad options name themselves; the deprecated openSqlStore still works", async () => {
    const db = await openSqlite(freshPath());
    await SqlStore.open({ database: db, migrate: false });
    expect(await tableExists(db, "kv")).toBe(false);
    await expect(SqlStore.open({ database: db, maxAttempts: 0 })).rejects.toThrow(
      /^maxAttempts must be a positive integer/,
    );
    await expect(SqlStore.open({ database: db, closeDatabase: "yes" as unknown as boolean })).rejects.toThrow(
      /^closeDatabase must be a boolean/,
    );
    await expect(SqlStore.open({})).rejects.toBeInstanceOf(InvalidArgumentError);
    const cases: [unknown, RegExp][] = [
      [{ database: null }, /^database is required/],
      [{ database: { migrate: async () => ({}) } }, /^database must be a storeroom Database/],
      [{ database: db, migrate: "no" }, /^migrate must be a boolean/],
      [{ database: db, maxAttempts: 2.5 }, /^maxAttempts must be a positive integer, got 2.5/],
    ];
    for (const [options, message] of cases) {
      const attempt = SqlStore.open(options as SqlStoreOptions);
      await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(message);
    }
    expect(() => new SqlStore(undefined as unknown as Database)).toThrow(/^database must be a storeroom Database/);
    const legacy = await openSqlStore(db);
    expect(await tableExists(db, "kv")).toBe(true);
    await legacy.update((tx) => tx.put("ns", "k", bytes("v")));
    await legacy.close();
    await db.close();
  });

  it("fails to open a path in a missing directory with a typed error", async () => {
    const err = await openStore("sqlite", join(dir, "missing", "dir", "kv.db")).catch((e: unknown) => e);
    expect(isStoreError(err)).toBe(true);
  });

  it("lets writers and many readers interleave on a file without torn reads", async () => {
    const store = await openStore("sqlite", freshPath());
    await store.update(async (tx) => {
      await tx.put("ns", "a", bytes("0"));
      await tx.put("ns", "b", bytes("0"));
    });
    const read = (tx: Parameters<Parameters<typeof store.view>[0]>[0], key: string) =>
      tx.get("ns", key).then((v) => Number(new TextDecoder().decode(v)));
    const writers = Array.from({ length: 50 }, (_, i) =>
      store.update(async (tx) => {
        await tx.put("ns", "a", bytes(String(i + 1)));
        await new Promise((resolve) => setImmediate(resolve));
        await tx.put("ns", "b", bytes(String(i + 1)));
      }),
    );
    const readers = Array.from({ length: 50 }, () =>
      store.view(async (tx) => {
        const a = await read(tx, "a");
        await new Promise((resolve) => setImmediate(resolve));
        expect(await read(tx, "b")).toBe(a);
      }),
    );
    await Promise.all([...writers, ...readers]);
    await store.close();
  });
});
