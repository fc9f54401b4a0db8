import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidArgumentError, UnsupportedError } from "../../src/errors.js";
import { nodeSqliteStable, openSqlite, SQLITE_ENGINE_ENV, type SqliteEngine } from "../../src/sql/index.js";
import { nodeSqliteAvailable } from "../../src/sql/sqlite/node-sqlite-connection.js";
import type { SqliteConnectionOptions } from "../../src/sql/sqlite/sqlite-connection.js";
import { openSqliteConnection } from "../../src/sql/sqlite/sqlite-engine.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir();
let n = 0;
const file = (name: string) => join(dir, `${name}-${n++}.db`);
const engines = availableSqliteEngines();
const connOptions: SqliteConnectionOptions = {
  readonly: false,
  busyTimeoutMs: 1000,
  synchronous: "normal",
  statementCacheSize: 50,
  wal: true,
};

describe("choosing the SQLite engine", () => {
  const saved = process.env[SQLITE_ENGINE_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[SQLITE_ENGINE_ENV];
    else process.env[SQLITE_ENGINE_ENV] = saved;
  });

  it("treats node:sqlite as stable from 24.15 and 25.7 (release candidate) on", () => {
    const table: [string, boolean][] = [
      ["20.20.2", false],
      ["22.23.3", false],
      ["24.14.9", false],
      ["24.15.0", true],
      ["24.21.0", true],
      ["25.6.1", false],
      ["25.7.0", true],
      ["26.0.0", true],
      ["27.1.0", true],
    ];
    for (const [version, stable] of table) expect([version, nodeSqliteStable(version)]).toEqual([version, stable]);
  });

  it("refuses an unknown engine naming the option, and opens nothing", async () => {
    const path = file("bad-engine");
    const err = await openSqlite(path, { engine: "sqlite4" as SqliteEngine }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^engine must be one of node:sqlite, better-sqlite3/);
    expect(existsSync(path)).toBe(false);
  });

  it(`takes the default from ${SQLITE_ENGINE_ENV}, and refuses a bad value there naming the variable`, async () => {
    for (const engine of engines) {
      process.env[SQLITE_ENGINE_ENV] = engine;
      const db = await openSqlite(":memory:");
      expect(db.engine).toBe(engine);
      await db.close();
    }
    process.env[SQLITE_ENGINE_ENV] = "nope";
    const err = await openSqlite(":memory:").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(SQLITE_ENGINE_ENV);
  });

  it("defaults to node:sqlite where it is stable and to another available engine elsewhere", async () => {
    delete process.env[SQLITE_ENGINE_ENV];
    const db = await openSqlite(":memory:");
    if (nodeSqliteStable() && nodeSqliteAvailable()) expect(db.engine).toBe("node:sqlite");
    else expect(db.engine).toBe(engines[0]);
    await db.close();
  });

  if (!nodeSqliteAvailable()) {
    it("refuses node:sqlite on a Node.js without it, with a typed error naming the version needed", async () => {
      const path = file("no-node-sqlite");
      const err = await openSqlite(path, { engine: "node:sqlite" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedError);
      expect((err as Error).message).toContain("Node.js 22.16");
      expect(existsSync(path)).toBe(false);
    });
  }
});

for (const engine of engines) {
  describe(`SQLite engine ${engine}`, () => {
    it("returns blobs as Buffer and integers beyond 2^53 as bigint, in get, all, iterate and RETURNING", async () => {
      const db = await openSqlite(file("values"), { engine });
      await db.run("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, b BLOB)");
      const big = 2n ** 60n + 1n;
      await db.run("INSERT INTO t (id, n, b) VALUES (1, 5, x'0102'), (2, $1, NULL)", [big]);
      const small = await db.get<{ n: unknown; b: unknown }>("SELECT n, b FROM t WHERE id = 1");
      expect(small?.n).toBe(5);
      expect(Buffer.isBuffer(small?.b)).toBe(true);
      expect(small?.b).toEqual(Buffer.from([1, 2]));
      if (engine === "node:sqlite") {
        // better-sqlite3 reads such integers as lossy numbers unless asked for bigints.
        expect((await db.get<{ n: unknown }>("SELECT n FROM t WHERE id = 2"))?.n).toBe(big);
        expect((await db.all<{ n: unknown }>("SELECT n FROM t ORDER BY id")).map((r) => r.n)).toEqual([5, big]);
        const streamed: unknown[] = [];
        for await (const row of db.iterate<{ n: unknown }>("SELECT n FROM t ORDER BY id")) streamed.push(row.n);
        expect(streamed).toEqual([5, big]);
        const returned = await db.transaction((tx) =>
          tx
            .all<{ id: number; n: unknown }>("UPDATE t SET n = n + 1 RETURNING id, n")
            .then((rows) => rows.sort((x, y) => x.id - y.id).map((r) => r.n)),
        );
        expect(returned).toEqual([6, big + 1n]);
        // The statement that met a large integer keeps working for small ones.
        expect((await db.get<{ n: unknown }>("SELECT n FROM t WHERE id = 1"))?.n).toBe(6);
      }
      await db.close();
    });

    it("keeps WAL frames until asked with wal_autocheckpoint off, and checkpoints on demand", async () => {
      const path = file("wal");
      const db = await openSqlite(path, { engine });
      await db.run("PRAGMA wal_autocheckpoint = 0");
      await db.run("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
      for (let i = 0; i < 40; i++) await db.run("INSERT INTO t VALUES ($1, $2)", [i, "x".repeat(4000)]);
      // Far beyond one page per row: nothing was copied back into the database file.
      expect(statSync(`${path}-wal`).size).toBeGreaterThan(40 * 4096);
      const other = await openSqlite(path, { engine, readConnection: false });
      expect(await other.get("SELECT count(*) AS n FROM t")).toEqual({ n: 40 });
      await other.close();
      expect(await db.get("PRAGMA wal_checkpoint(TRUNCATE)")).toEqual({ busy: 0, log: 0, checkpointed: 0 });
      expect(statSync(`${path}-wal`).size).toBe(0);
      expect(await db.get("SELECT count(*) AS n FROM t")).toEqual({ n: 40 });
      await db.close();
    });
  });
}

if (engines.length === 2) {
  describe("node:sqlite beside better-sqlite3", () => {
    it("classifies statements as read-only exactly as sqlite3_stmt_readonly does", () => {
      const path = file("classify");
      const node = openSqliteConnection("node:sqlite", path, { ...connOptions });
      node.exec(
        "CREATE TABLE t (k TEXT PRIMARY KEY, v); CREATE TABLE u (id INTEGER PRIMARY KEY AUTOINCREMENT, v);" +
          "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u (v) VALUES (new.v); END;" +
          "CREATE VIRTUAL TABLE f USING fts5(x)",
      );
      const better = openSqliteConnection("better-sqlite3", path, { ...connOptions });
      const statements = [
        "SELECT 1",
        "SELECT * FROM t WHERE k = $1",
        "SELECT total_changes() AS n",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "WITH x AS (SELECT 1) INSERT INTO t SELECT 'a', 1 FROM x",
        "INSERT INTO t VALUES ($1, $2)",
        "INSERT INTO t VALUES ($1, $2) RETURNING k",
        "UPDATE t SET v = 1",
        "DELETE FROM t",
        "INSERT INTO f VALUES ('x')",
        "SELECT * FROM f WHERE f MATCH 'x'",
        "BEGIN",
        "BEGIN DEFERRED",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE s",
        "PRAGMA user_version",
        "PRAGMA user_version = 3",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode = WAL",
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "PRAGMA wal_autocheckpoint = 0",
        "PRAGMA synchronous = FULL",
        "PRAGMA table_info(t)",
        "PRAGMA integrity_check",
        "PRAGMA optimize",
        "CREATE TABLE z (a)",
        "CREATE TEMP TABLE tz (a)",
        "CREATE INDEX i ON t (v)",
        "DROP TABLE u",
        "VACUUM",
        "VACUUM INTO $1",
        "ANALYZE",
        "REINDEX",
        "ATTACH ':memory:' AS aux",
      ];
      const disagreements = statements.filter((sql) => node.prepare(sql).readonly !== better.prepare(sql).readonly);
      expect(disagreements).toEqual([]);
      expect(statements.filter((sql) => node.prepare(sql).readonly).length).toBe(17);
      node.close();
      better.close();
    });

    it("shares one WAL file: each engine reads what the other committed while both are open", async () => {
      const path = file("shared");
      const a = await openSqlite(path, { engine: "node:sqlite" });
      const b = await openSqlite(path, { engine: "better-sqlite3" });
      await a.run("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)");
      await a.run("INSERT INTO t VALUES ('from-node', x'01')");
      await b.run("INSERT INTO t VALUES ('from-better', x'02')");
      const expected = [
        { k: "from-better", v: Buffer.from([2]) },
        { k: "from-node", v: Buffer.from([1]) },
      ];
      expect(await a.all("SELECT k, v FROM t ORDER BY k")).toEqual(expected);
      expect(await b.all("SELECT k, v FROM t ORDER BY k")).toEqual(expected);
      await a.close();
      await b.close();
    });
  });
}
