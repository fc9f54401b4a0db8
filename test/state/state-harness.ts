import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { StateStore, type StateStoreOptions, stateMigrations } from "../../src/state/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

export const START = Date.parse("2026-01-01T00:00:00Z");

/** What a behaviour suite needs from an engine. */
export interface StateHarness {
  readonly engine: "sqlite" | "postgres";
  /** The current test's clock (a fresh ManualClock at START per test). */
  readonly clock: ManualClock;
  /** A fresh, empty database, closed after the test. */
  freshDatabase(): Promise<Database>;
  /** A store over a fresh database, using the test clock unless overridden; closed after the test. */
  open(overrides?: Omit<StateStoreOptions, "databasePath" | "database">): Promise<StateStore>;
  /** A store over `database` (not closed by the store). */
  openOn(database: Database, overrides?: Omit<StateStoreOptions, "databasePath" | "database">): Promise<StateStore>;
}

/** Registers `suite` once for SQLite and, when PostgreSQL is available, once for PostgreSQL. */
export function forEachEngine(title: string, suite: (h: StateHarness) => void): void {
  describe(`sqlite: ${title}`, () => {
    const dir = useTempDir("storeroom-state-");
    suite(harness("sqlite", () => openSqlite(join(dir, `${randomBytes(6).toString("hex")}.db`))));
  });
  describe.runIf(hasPostgres)(`postgres: ${title}`, () => {
    const pg = useFreshPostgresDatabase();
    const create = () => openPostgres(pg.url, { schema: `s_${randomBytes(6).toString("hex")}`, max: 4 });
    // Migrating a schema costs ~200 ms on PostgreSQL, so open() reuses one migrated schema per
    // block, emptied before every test; freshDatabase() still gives a brand-new schema.
    let shared: Database | undefined;
    const reuse = async () => {
      if (shared === undefined) {
        shared = await create();
        await shared.migrate(stateMigrations);
      }
      return shared;
    };
    beforeEach(async () => {
      await shared?.run("DELETE FROM entries");
      await shared?.run("DELETE FROM journal_entries");
      await shared?.run("DELETE FROM state_changes");
      await shared?.run("UPDATE state_version SET version = 1, pruned_through = 1");
    });
    afterAll(async () => {
      await shared?.close();
    });
    suite(harness("postgres", create, reuse));
  });
}

function harness(
  engine: "sqlite" | "postgres",
  create: () => Promise<Database>,
  reuse?: () => Promise<Database>,
): StateHarness {
  let clock = new ManualClock(START);
  const cleanup: (() => Promise<void>)[] = [];
  beforeEach(() => {
    clock = new ManualClock(START);
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  const h: StateHarness = {
    engine,
    get clock() {
      return clock;
    },
    async freshDatabase() {
      const db = await create();
      cleanup.push(() => db.close());
      return db;
    },
    async openOn(database, overrides = {}) {
      const store = await StateStore.open({ database, clock, ...overrides });
      cleanup.push(() => store.close());
      return store;
    },
    async open(overrides = {}) {
      return h.openOn(reuse === undefined ? await h.freshDatabase() : await reuse(), overrides);
    },
  };
  return h;
}

/** Collects events from `onChange` into an array. */
export function recordEvents(store: {
  onChange(cb: (e: import("../../src/state/index.js").StateEvent) => void): () => void;
}) {
  const events: import("../../src/state/index.js").StateEvent[] = [];
  const stop = store.onChange((e) => events.push(e));
  return { events, stop };
}
