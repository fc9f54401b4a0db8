import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BusyError } from "../../src/errors.js";
import { openStore, SqlStore, type Store } from "../../src/kv/index.js";
import { type Database, openPostgres } from "../../src/sql/index.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";

const encode = (n: number) => new TextEncoder().encode(String(n));
const decode = (v: Uint8Array) => Number(new TextDecoder().decode(v));

function increment(store: Store, key: string, pause = false): Promise<void> {
  return store.update(async (tx) => {
    const n = decode(await tx.get("counters", key));
    if (pause) await new Promise((resolve) => setTimeout(resolve, 5));
    await tx.put("counters", key, encode(n + 1));
  });
}

/** Fault injection around the real database: the first `failures` transactions lose a serialization check. */
function flaky(db: Database, failures: number, code = "40001"): { db: Database; calls: () => number } {
  let calls = 0;
  const wrapped: Database = {
    dialect: db.dialect,
    get closed() {
      return db.closed;
    },
    run: (sql, params) => db.run(sql, params),
    get: (sql, params) => db.get(sql, params),
    all: (sql, params) => db.all(sql, params),
    iterate: (sql, params, options) => db.iterate(sql, params, options),
    migrate: (set) => db.migrate(set),
    close: () => db.close(),
    transaction: (fn, options) => {
      calls++;
      if (calls <= failures) {
        return Promise.reject(new BusyError("injected", { cause: Object.assign(new Error("injected"), { code }) }));
      }
      return db.transaction(fn, options);
    },
  };
  return { db: wrapped, calls: () => calls };
}

describe.runIf(hasPostgres)("postgres kv driver", () => {
  const db = { name: "", url: "" };
  beforeAll(async () => Object.assign(db, await createDatabase("kvpg")));
  afterAll(async () => {
    if (db.name !== "") await dropDatabase(db.name);
  });

  it("loses no update: 8 connections x 100 increments = 800", async () => {
    const stores = await Promise.all(Array.from({ length: 8 }, () => openStore("postgres", db.url)));
    try {
      await stores[0]?.update((tx) => tx.put("counters", "n", encode(0)));
      await Promise.all(
        stores.map(async (store) => {
          for (let i = 0; i < 100; i++) await increment(store, "n");
        }),
      );
      expect(decode(await (stores[0] as Store).view((tx) => tx.get("counters", "n")))).toBe(800);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 90_000);

  it("surfaces the serialization failure when retries are disabled", async () => {
    const store = await SqlStore.open({ database: await openPostgres(db.url), closeDatabase: true, maxAttempts: 1 });
    try {
      await store.update((tx) => tx.put("counters", "m", encode(0)));
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => increment(store, "m", true)));
      const failures = results.filter((r) => r.status === "rejected");
      expect(failures.length).toBeGreaterThan(0);
      for (const f of failures) expect((f as PromiseRejectedResult).reason).toBeInstanceOf(BusyError);
      const committed = results.length - failures.length;
      expect(decode(await store.view((tx) => tx.get("counters", "m")))).toBe(committed);
    } finally {
      await store.close();
    }
  });

  it("retries an update only on retryable errors, and at most maxAttempts times", async () => {
    const real = await openPostgres(db.url);
    try {
      const recovering = flaky(real, 3);
      const store = await SqlStore.open({ database: recovering.db, maxAttempts: 4 });
      await store.update((tx) => tx.put("retry", "k", encode(1)));
      expect(recovering.calls()).toBe(4);
      const exhausted = flaky(real, 10);
      const store2 = await SqlStore.open({ database: exhausted.db, maxAttempts: 3 });
      const before = exhausted.calls();
      await expect(store2.update((tx) => tx.put("retry", "k", encode(2)))).rejects.toBeInstanceOf(BusyError);
      expect(exhausted.calls() - before).toBe(3);
      const fatal = flaky(real, 1, "23505");
      const store3 = await SqlStore.open({ database: fatal.db, maxAttempts: 5 });
      await expect(store3.update((tx) => tx.put("retry", "k", encode(3)))).rejects.toBeInstanceOf(BusyError);
      expect(fatal.calls()).toBe(1);
      const own = new Error("callback failed");
      let runs = 0;
      await expect(
        store.update(async () => {
          runs++;
          throw own;
        }),
      ).rejects.toBe(own);
      expect(runs).toBe(1);
      expect(decode(await store.view((tx) => tx.get("retry", "k")))).toBe(1);
    } finally {
      await real.close();
    }
  });

  it("backs off exponentially between attempts, so writers that keep losing step out of each other's way", async () => {
    const real = await openPostgres(db.url);
    const random = vi.spyOn(Math, "random").mockReturnValue(1);
    try {
      // 8 lost attempts: at most 2 + 4 + ... + 256 = 510 ms of pauses (the linear back-off this
      // replaced paused 72 ms, and 8 writers on one key could then use up the 50 attempts).
      const losing = flaky(real, 8);
      const store = await SqlStore.open({ database: losing.db, maxAttempts: 9 });
      const started = performance.now();
      await store.update((tx) => tx.put("backoff", "k", encode(1)));
      expect(losing.calls()).toBe(9);
      expect(performance.now() - started).toBeGreaterThanOrEqual(450);
    } finally {
      random.mockRestore();
      await real.close();
    }
  });

  it("stores namespaces and keys as BYTEA", async () => {
    const store = await openStore("postgres", db.url);
    await store.update((tx) => tx.put("n\u0000", "k\u0000", new Uint8Array([1])));
    await store.close();
    const raw = await openPostgres(db.url);
    const columns = await raw.all<{ column_name: string; data_type: string }>(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'kv' ORDER BY ordinal_position",
    );
    expect(columns.map((c) => [c.column_name, c.data_type])).toEqual([
      ["ns", "bytea"],
      ["key", "bytea"],
      ["value", "bytea"],
    ]);
    const row = await raw.get<{ key: string }>("SELECT encode(key, 'hex') AS key FROM kv WHERE ns = $1", [
      new Uint8Array([0x6e, 0]),
    ]);
    expect(row?.key).toBe("6b00");
    await raw.close();
  });
});
