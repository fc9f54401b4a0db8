import { createRequire } from "node:module";
import { InvalidArgumentError } from "../../errors.js";
import { BetterSqlite3Connection } from "./better-sqlite3-connection.js";
import { NodeSqliteConnection, nodeSqliteAvailable } from "./node-sqlite-connection.js";
import type { SqliteConnection, SqliteConnectionOptions, SqliteEngine } from "./sqlite-connection.js";
import type { SqliteThreadDriver, WalCheckpointWorker } from "./wal-checkpoint-worker.js";

/** The engines {@link openSqlite} accepts. */
export const SQLITE_ENGINES: readonly SqliteEngine[] = Object.freeze(["node:sqlite", "better-sqlite3"]);

/** The environment variable that picks the engine of every database opened without `engine`. */
export const SQLITE_ENGINE_ENV = "STOREROOM_SQLITE_ENGINE";

/** Checks an engine name given by a caller; `source` names where it came from in the error. */
export function parseSqliteEngine(value: unknown, source: string): SqliteEngine {
  if (SQLITE_ENGINES.includes(value as SqliteEngine)) return value as SqliteEngine;
  throw new InvalidArgumentError(`${source} must be one of ${SQLITE_ENGINES.join(", ")}, got ${String(value)}`, {
    op: "sql.open",
  });
}

/**
 * True on the Node.js versions whose `node:sqlite` is a release candidate (24.15 and later
 * 24.x, 25.7 and later): no experimental warning, and the API is not expected to change.
 */
export function nodeSqliteStable(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 25 || (major === 25 && minor >= 7) || (major === 24 && minor >= 15);
}

/**
 * The engine used when `openSqlite` is given none: `$STOREROOM_SQLITE_ENGINE` when set;
 * otherwise `node:sqlite` where it is stable, which needs nothing installed; otherwise
 * better-sqlite3 when it is installed; otherwise `node:sqlite` where it exists at all
 * (22.16 and later, with Node's experimental warning); otherwise better-sqlite3, whose
 * absence then fails with a {@link MissingDependencyError} naming it.
 */
export function defaultSqliteEngine(): SqliteEngine {
  const fromEnv = process.env[SQLITE_ENGINE_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return parseSqliteEngine(fromEnv, SQLITE_ENGINE_ENV);
  if (nodeSqliteStable() && nodeSqliteAvailable()) return "node:sqlite";
  if (betterSqlite3Installed()) return "better-sqlite3";
  return nodeSqliteAvailable() ? "node:sqlite" : "better-sqlite3";
}

/** Opens one connection on `engine`. */
export function openSqliteConnection(
  engine: SqliteEngine,
  path: string,
  options: SqliteConnectionOptions,
): SqliteConnection {
  return engine === "node:sqlite"
    ? new NodeSqliteConnection(path, options)
    : new BetterSqlite3Connection(path, options);
}

/** How a worker thread loads `engine`'s driver (see {@link WalCheckpointWorker}). */
export function sqliteThreadDriver(engine: SqliteEngine): SqliteThreadDriver {
  return engine === "node:sqlite"
    ? { module: "node:sqlite", exportName: "DatabaseSync" }
    : { module: createRequire(import.meta.url).resolve("better-sqlite3"), exportName: undefined };
}

let installed: boolean | undefined;

function betterSqlite3Installed(): boolean {
  if (installed === undefined) {
    try {
      createRequire(import.meta.url).resolve("better-sqlite3");
      installed = true;
    } catch {
      installed = false;
    }
  }
  return installed;
}
