import { createRequire } from "node:module";
import { defaultSqliteEngine, type SqliteEngine } from "../../src/sql/index.js";
import { nodeSqliteAvailable } from "../../src/sql/sqlite/node-sqlite-connection.js";

/**
 * The SQLite engines that open on this Node.js: better-sqlite3 when installed, node:sqlite
 * from Node 22.16. The default engine comes first.
 */
export function availableSqliteEngines(): SqliteEngine[] {
  const engines: SqliteEngine[] = [];
  try {
    createRequire(import.meta.url).resolve("better-sqlite3");
    engines.push("better-sqlite3");
  } catch {
    // not installed: only node:sqlite is tested
  }
  if (nodeSqliteAvailable()) engines.push("node:sqlite");
  const preferred = defaultSqliteEngine();
  return engines.sort((a, b) => Number(b === preferred) - Number(a === preferred));
}

/** The available engines other than the default one, for suites that already run on the default. */
export function otherSqliteEngines(): SqliteEngine[] {
  return availableSqliteEngines().slice(1);
}
