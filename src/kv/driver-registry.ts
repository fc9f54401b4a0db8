import { DuplicateDriverError, InvalidArgumentError, UnknownDriverError } from "../errors.js";
import { type Database, openPostgres, openSqlite } from "../sql/index.js";
import { openMemoryStore } from "./memory-store.js";
import { SqlStore } from "./sql-store.js";
import type { Store, StoreFactory } from "./store.js";

/**
 * One registry per process, even when this module is loaded twice (two copies of the package
 * in node_modules): the map lives on `globalThis` under a registered symbol.
 */
const REGISTRY = Symbol.for("storeroom.kv.drivers");
type Registry = Map<string, StoreFactory>;

const builtins: Record<string, StoreFactory> = {
  memory: () => openMemoryStore(),
  sqlite: async (dsn) => openOwned(await openSqlite(dsn === "" ? ":memory:" : dsn)),
  postgres: async (dsn) => openOwned(await openPostgres(dsn)),
};

async function openOwned(database: Database): Promise<Store> {
  try {
    return await SqlStore.open({ database, closeDatabase: true });
  } catch (err) {
    await database.close();
    throw err;
  }
}

function registry(): Registry {
  const holder = globalThis as { [REGISTRY]?: Registry };
  let map = holder[REGISTRY];
  if (map === undefined) {
    map = new Map();
    holder[REGISTRY] = map;
  }
  // Built-ins are added on first use and never twice, so a second copy of this module is harmless.
  for (const [name, factory] of Object.entries(builtins)) if (!map.has(name)) map.set(name, factory);
  return map;
}

/**
 * Registers a driver under `name` for {@link openStore}. Throws {@link DuplicateDriverError}
 * when the name is taken (including the built-ins `memory`, `sqlite`, `postgres`) and
 * {@link InvalidArgumentError} for an empty name or a non-function factory.
 *
 * @example
 * ```ts
 * registerDriver("fs", async (dsn) => new FileStore(dsn));
 * const store = await openStore("fs", "./data");
 * ```
 */
export function registerDriver(name: string, factory: StoreFactory): void {
  if (typeof name !== "string" || name.length === 0) throw new InvalidArgumentError("a driver needs a non-empty name");
  if (typeof factory !== "function") throw new InvalidArgumentError(`driver "${name}" needs a factory function`);
  const map = registry();
  if (map.has(name)) throw new DuplicateDriverError(`driver "${name}" is already registered`, { op: "kv.register" });
  map.set(name, factory);
}

/** The registered driver names, sorted. */
export function drivers(): string[] {
  return [...registry().keys()].sort();
}

/**
 * Opens a {@link Store} with the named driver. Rejects with {@link UnknownDriverError} (naming
 * the registered drivers) for an unknown name; a factory's own error is rethrown unchanged.
 * Does not run kv migrations: call {@link Store.migrate} when the application is ready.
 *
 * @example
 * ```ts
 * const store = await openStore("sqlite", "./app.db");
 * await store.update((tx) => tx.put("settings", "theme", new TextEncoder().encode("dark")));
 * ```
 */
export async function openStore(driver: string, dsn: string): Promise<Store> {
  const factory = registry().get(driver);
  if (factory === undefined) {
    throw new UnknownDriverError(`unknown kv driver "${driver}" (registered: ${drivers().join(", ")})`, {
      op: "kv.open",
    });
  }
  return factory(dsn);
}
