import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TenantStateCache } from "../../src/server/tenant-state-cache.js";
import { type Database, openSqlite } from "../../src/sql/index.js";
import { StateStore } from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-state-cache-");
let counter = 0;

/** A gate an operation waits at: `reached` resolves once it got there, `open()` lets it go on. */
function gate() {
  let arrive!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  const wait = () => {
    arrive();
    return opened;
  };
  return { reached, open: release, wait };
}

describe("TenantStateCache: one state store per tenant, closed only after its operations", () => {
  const dbs: Database[] = [];
  const cache = { current: undefined as TenantStateCache<StateStore> | undefined };
  afterEach(async () => {
    await cache.current?.close();
    for (const db of dbs.splice(0)) await db.close();
  });

  /** A tenant database and the opener the server uses for it (no change-log poll). */
  async function tenant(): Promise<{ open: () => Promise<StateStore>; opened: StateStore[] }> {
    const db = await openSqlite(join(dir, `t${++counter}.db`));
    dbs.push(db);
    const opened: StateStore[] = [];
    const open = async () => {
      const state = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 0 });
      opened.push(state);
      return state;
    };
    return { open, opened };
  }

  it("a store with an operation in flight is not evicted: the operation commits and a stream opened meanwhile gets it", async () => {
    const states = new TenantStateCache<StateStore>(1);
    cache.current = states;
    const a = await tenant();
    const b = await tenant();
    const g = gate();
    const writing = states.use("a", a.open, async (state) => {
      await g.wait();
      return state.set("g", "k", "in flight");
    });
    await g.reached;
    // Another tenant takes the only slot; "a" stays while its write runs.
    await states.use("b", b.open, (state) => state.set("g", "k", "b"));
    const { state: watched, release } = await states.pin("a", a.open);
    const watcher = watched.watch("g");
    g.open();
    const version = await writing;
    expect((await watcher.next()).value).toMatchObject({ key: "k", value: "in flight", version });
    expect(a.opened).toHaveLength(1);
    await watcher.close();
    release();
  });

  it("drop closes the store after its running operation; the tenant's next store opens after that close", async () => {
    const states = new TenantStateCache<StateStore>(10);
    cache.current = states;
    const a = await tenant();
    const order: string[] = [];
    const g = gate();
    const writing = states
      .use("a", a.open, async (state) => {
        await g.wait();
        await state.set("g", "k", "v1");
        order.push("write committed");
      })
      .then(() => order.push("operation ended"));
    await g.reached;
    const dropped = states.drop("a").then(() => order.push("dropped"));
    const next = states.pin("a", a.open).then((pinned) => {
      order.push("next store open");
      return pinned;
    });
    g.open();
    await Promise.all([writing, dropped]);
    const { state, release } = await next;
    expect(order).toEqual(["write committed", "operation ended", "dropped", "next store open"]);
    expect(a.opened).toHaveLength(2);
    expect(state).toBe(a.opened[1]);
    // The new store starts after the first one's write: its watcher gets the next write only.
    const watcher = state.watch("g");
    await states.use("a", a.open, (s) => s.set("g", "k", "v2"));
    expect((await watcher.next()).value).toMatchObject({ value: "v2" });
    expect(await state.get("g", "k")).toBe("v2");
    await watcher.close();
    release();
  });

  it("the purge pass holds each store like an operation", async () => {
    const states = new TenantStateCache<StateStore>(1);
    cache.current = states;
    const a = await tenant();
    const b = await tenant();
    await states.use("a", a.open, (state) => state.set("g", "k", "v"));
    const g = gate();
    const pass = states.forEachRecent(async (state) => {
      await g.wait();
      await state.purgeExpired();
    });
    await g.reached;
    await states.use("b", b.open, (state) => state.set("g", "k", "b"));
    g.open();
    expect(await pass).toEqual({ done: 1, failed: 0 });
    expect(states.size).toBe(1);
  });
});
