import { join } from "node:path";
import { afterAll, beforeAll, describe } from "vitest";
import type { Clock } from "../../src/clock.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { StateStore } from "../../src/state/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "./postgres.js";
import { useTempDir } from "./temp-dir.js";

/** A state store shared by the tests of one block, opened before them and closed after. */
export interface SharedState {
  /** The store (valid inside tests and hooks). */
  readonly state: StateStore;
}

/**
 * Registers `suite` on a state store over a SQLite file and, when PostgreSQL is available,
 * over a fresh PostgreSQL database; one store per block, shared by its tests.
 */
export function forEachStateBackend(
  title: string,
  suite: (shared: SharedState) => void,
  options: { clock?: Clock } = {},
): void {
  describe(`${title} (sqlite)`, () => {
    const dir = useTempDir("storeroom-adapter-");
    register(suite, () => openSqlite(join(dir, "state.db")), options.clock);
  });
  describe.runIf(hasPostgres)(`${title} (postgres)`, () => {
    const pg = useFreshPostgresDatabase();
    register(suite, () => openPostgres(pg.url, { max: 4 }), options.clock);
  });
}

function register(suite: (shared: SharedState) => void, open: () => Promise<Database>, clock?: Clock): void {
  let database: Database | undefined;
  let state: StateStore | undefined;
  beforeAll(async () => {
    database = await open();
    state = await StateStore.open({ database, ...(clock === undefined ? {} : { clock }) });
  });
  afterAll(async () => {
    await state?.close();
    await database?.close();
  });
  suite({
    get state() {
      if (state === undefined) throw new Error("the shared state store is opened in beforeAll");
      return state;
    },
  });
}
