import { describe, expect, it } from "vitest";
import { type Database, type Executor, openSqlite, type SqlParams } from "../../src/sql/index.js";
import { executorContractCases } from "../../src/testing/index.js";

/** A real SQLite database with one behaviour broken, to prove the contract notices. */
function broken(db: Database, fault: "ignoresReadOnly" | "commitsOnError" | "rawErrors"): Database {
  const wrap = (ex: Executor): Executor => ({
    dialect: ex.dialect,
    run: (sql: string, params?: SqlParams) =>
      fault === "rawErrors"
        ? ex.run(sql, params).catch((err: Error) => {
            throw err.cause ?? err;
          })
        : ex.run(sql, params),
    get: (sql, params) => ex.get(sql, params),
    all: (sql, params) => ex.all(sql, params),
    iterate: (sql, params, options) => ex.iterate(sql, params, options),
    transaction: (fn, options) => {
      const opts = fault === "ignoresReadOnly" ? { ...options, readOnly: false } : options;
      if (fault !== "commitsOnError") return ex.transaction((tx) => fn(wrap(tx)), opts);
      let failure: unknown;
      return ex
        .transaction(async (tx) => {
          try {
            return await fn(wrap(tx));
          } catch (err) {
            failure = err;
            return undefined as never;
          }
        }, opts)
        .then((value) => {
          if (failure !== undefined) throw failure;
          return value;
        });
    },
  });
  return Object.assign(wrap(db), {
    get closed() {
      return db.closed;
    },
    migrate: db.migrate.bind(db),
    close: db.close.bind(db),
  }) as Database;
}

const caseNamed = (name: string) => {
  const found = executorContractCases.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no case ${name}`);
  return found;
};

describe("the executor contract itself", () => {
  it.each([
    ["ignoresReadOnly", "rejects writes in a read-only transaction and writes nothing"],
    ["commitsOnError", "rolls back and rethrows the callback's error unchanged"],
    ["rawErrors", "maps unique violations to a typed error with the driver error as cause"],
  ] as const)("fails a database that %s (%s) and passes the real one", async (fault, name) => {
    const c = caseNamed(name);
    await expect(c.run(async () => broken(await openSqlite(":memory:"), fault))).rejects.toThrow();
    await expect(c.run(() => openSqlite(":memory:"))).resolves.toBeUndefined();
  });

  it("has unique case names", () => {
    const names = executorContractCases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBeGreaterThanOrEqual(16);
  });
});
