import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import {
  BusyError,
  ConstraintError,
  InvalidArgumentError,
  ReadOnlyError,
  UniqueViolationError,
  UnsupportedError,
} from "../../src/errors.js";
import { isRetryableTransactionError, openPostgres } from "../../src/sql/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";

describe.runIf(hasPostgres)("openPostgres", () => {
  const fresh = useFreshPostgresDatabase();

  it("creates and uses a schema given by name, and rejects unsafe names", async () => {
    const db = await openPostgres(fresh.url, { schema: "app_one" });
    await db.run("CREATE TABLE notes (id TEXT PRIMARY KEY)");
    expect(await db.get("SELECT table_schema FROM information_schema.tables WHERE table_name = 'notes'")).toEqual({
      table_schema: "app_one",
    });
    await db.close();
    await expect(openPostgres(fresh.url, { schema: "x; DROP TABLE y" })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("uses a caller's pool and leaves it open on close", async () => {
    const pool = new pg.Pool({ connectionString: fresh.url, max: 2 });
    const db = await openPostgres(pool);
    expect(await db.get("SELECT 1 AS one")).toEqual({ one: 1 });
    await db.close();
    expect((await pool.query("SELECT 2 AS two")).rows).toEqual([{ two: 2 }]);
    await expect(openPostgres(pool, { schema: "s" })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(openPostgres(pool, { max: 2 })).rejects.toThrow(/^the max option needs a connection string/);
    await expect(openPostgres(fresh.url, { max: 0 })).rejects.toThrow(/^max must be a positive integer, got 0/);
    await pool.end();
  });

  it("refuses a bad clock, schema or pool with InvalidArgumentError naming it, before connecting", async () => {
    const cases: [Parameters<typeof openPostgres>, RegExp][] = [
      [[fresh.url, { clock: {} as never }], /^clock must be a Clock \(an object with now\(\)\)/],
      [[fresh.url, { schema: 5 as never }], /^schema must be a string, got 5/],
      [[fresh.url, { schema: "x; DROP TABLE y" }], /^schema must be a name matching/],
      [[{} as never], /^openPostgres needs a connection string or a pg\.Pool/],
      [[null as never], /^openPostgres needs a connection string or a pg\.Pool/],
    ];
    for (const [args, message] of cases) {
      const attempt = openPostgres(...args);
      await expect(attempt).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(message);
    }
  });

  it("returns clients to the pool after iterations that end early", async () => {
    const db = await openPostgres(fresh.url, { max: 2 });
    for (let i = 0; i < 5; i++) {
      for await (const row of db.iterate<{ g: number }>("SELECT g FROM generate_series(1, 1000) g", [], {
        batchSize: 10,
      })) {
        if (row.g === 3) break;
      }
    }
    // With max 2 connections, leaked clients would make this wait forever.
    expect(await db.get("SELECT count(*) AS c FROM generate_series(1, 10)")).toEqual({ c: 10 });
    await db.close();
  });

  it("refuses read-only savepoints inside a write transaction", async () => {
    const db = await openPostgres(fresh.url);
    await expect(db.transaction((tx) => tx.transaction(async () => 1, { readOnly: true }))).rejects.toBeInstanceOf(
      UnsupportedError,
    );
    await db.close();
  });

  it("maps serialization failures to a retryable BusyError", async () => {
    const db = await openPostgres(fresh.url, { max: 4 });
    await db.run("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
    await db.run("INSERT INTO counter VALUES (1, 0)");
    let gate: () => void = () => {};
    const bothRead = new Promise<void>((resolve) => {
      gate = resolve;
    });
    let reads = 0;
    const bump = () =>
      db.transaction(
        async (tx) => {
          const row = await tx.get<{ n: number }>("SELECT n FROM counter WHERE id = 1");
          if (++reads === 2) gate();
          await bothRead;
          await tx.run("UPDATE counter SET n = $1 WHERE id = 1", [(row?.n ?? 0) + 1]);
        },
        { isolation: "serializable" },
      );
    const results = await Promise.allSettled([bump(), bump()]);
    const failed = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(failed).toHaveLength(1);
    expect(failed[0]?.reason).toBeInstanceOf(BusyError);
    expect(isRetryableTransactionError(failed[0]?.reason)).toBe(true);
    expect(await db.get("SELECT n FROM counter WHERE id = 1")).toEqual({ n: 1 });
    await db.close();
  });

  it("maps constraint, read-only, lock-timeout and deadlock SQLSTATEs to typed errors, keeping the driver's code", async () => {
    const db = await openPostgres(fresh.url, { schema: "errors_map", max: 4 });
    await db.run("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
    await db.run("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent (id))");
    await db.run("INSERT INTO parent (id) VALUES (1), (2)");
    const codeOf = (err: unknown) => ((err as Error).cause as { code?: string }).code;

    const fk = await db.run("INSERT INTO child (id, parent) VALUES ($1, $2)", [1, 99]).catch((e: unknown) => e);
    expect(fk).toBeInstanceOf(ConstraintError);
    expect(fk).not.toBeInstanceOf(UniqueViolationError);
    expect(codeOf(fk)).toBe("23503");
    const notNull = await db.run("INSERT INTO child (id, parent) VALUES ($1, NULL)", [2]).catch((e: unknown) => e);
    expect(notNull).toBeInstanceOf(ConstraintError);
    expect(codeOf(notNull)).toBe("23502");

    const readOnly = await db
      .transaction((tx) => tx.run("INSERT INTO parent (id) VALUES ($1)", [3]), { readOnly: true })
      .catch((e: unknown) => e);
    expect(readOnly).toBeInstanceOf(ReadOnlyError);
    expect(codeOf(readOnly)).toBe("25006");

    // 55P03: a lock that is not available at once.
    let release: () => void = () => {};
    let locked: () => void = () => {};
    const holding = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = db.transaction(async (tx) => {
      await tx.run("SELECT id FROM parent WHERE id = 1 FOR UPDATE");
      locked();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await holding;
    const noWait = await db
      .transaction((tx) => tx.run("SELECT id FROM parent WHERE id = 1 FOR UPDATE NOWAIT"))
      .catch((e: unknown) => e);
    release();
    await holder;
    expect(noWait).toBeInstanceOf(BusyError);
    expect(codeOf(noWait)).toBe("55P03");
    expect(isRetryableTransactionError(noWait)).toBe(true);

    // 40P01: two transactions each waiting for the other's row.
    let arrived = 0;
    let bothLocked: () => void = () => {};
    const barrier = new Promise<void>((resolve) => {
      bothLocked = resolve;
    });
    const crossing = (first: number, second: number) =>
      db.transaction(async (tx) => {
        await tx.run("SET LOCAL deadlock_timeout = '20ms'");
        await tx.run("UPDATE parent SET id = id WHERE id = $1", [first]);
        if (++arrived === 2) bothLocked();
        await barrier;
        await tx.run("UPDATE parent SET id = id WHERE id = $1", [second]);
      });
    const outcomes = await Promise.allSettled([crossing(1, 2), crossing(2, 1)]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(BusyError);
    expect(codeOf(failures[0])).toBe("40P01");
    expect(isRetryableTransactionError(failures[0])).toBe(true);
    await db.close();
  });

  it("reads BIGINT as a number while it is a safe integer and as a bigint beyond 2^53, also through a cursor", async () => {
    const db = await openPostgres(fresh.url, { schema: "bigints" });
    await db.run(`CREATE TABLE big (id INTEGER PRIMARY KEY, n ${db.dialect.bigintType})`);
    const safe = Number.MAX_SAFE_INTEGER;
    const beyond = 2n ** 60n + 1n;
    await db.run("INSERT INTO big (id, n) VALUES (1, $1), (2, $2), (3, $3)", [safe, beyond, -(2n ** 63n)]);
    expect(await db.all("SELECT n FROM big ORDER BY id")).toEqual([{ n: safe }, { n: beyond }, { n: -(2n ** 63n) }]);
    expect(await db.get("SELECT n FROM big WHERE n = $1", [beyond])).toEqual({ n: beyond });
    expect(await db.get("UPDATE big SET n = n WHERE id = 1 RETURNING n")).toEqual({ n: safe });
    expect(await db.get("SELECT count(*) AS c FROM big")).toEqual({ c: 3 });
    const streamed: unknown[] = [];
    for await (const row of db.iterate<{ n: unknown }>("SELECT n FROM big ORDER BY id", [], { batchSize: 1 })) {
      streamed.push(row.n);
    }
    expect(streamed).toEqual([safe, beyond, -(2n ** 63n)]);
    await db.close();
  });
});

describe.runIf(hasPostgres)("openPostgres when the server drops idle connections", () => {
  it("survives the idle clients' errors and reconnects on the next query", async () => {
    const { createDatabase, dropDatabase } = await import("../support/postgres.js");
    const { url, name } = await createDatabase("idle");
    const db = await openPostgres(url, { max: 2 });
    expect(await db.get("SELECT 1 AS one")).toEqual({ one: 1 });
    // The pool's idle client is one of this process's TCP sockets: it goes once its error was handled.
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
    const withIdleClient = sockets();
    const admin = new pg.Client({ connectionString: url.replace(`/${name}`, "/postgres") });
    await admin.connect();
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name]);
    await admin.end();
    await vi.waitFor(() => expect(sockets()).toBeLessThan(withIdleClient), { timeout: 10_000 });
    expect(await db.get("SELECT 2 AS two")).toEqual({ two: 2 });
    await db.close();
    await dropDatabase(name);
  });
});
