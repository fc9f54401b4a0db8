import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { type StateEvent, StateStore } from "../../src/state/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const distState = fileURLToPath(new URL("../../dist/state/index.js", import.meta.url));
const distSql = fileURLToPath(new URL("../../dist/sql/index.js", import.meta.url));
const WRITES = 30;

/**
 * A writer process: `WRITES` sets of its own group, then a batch of three and a delete, printing
 * what it committed as JSON lines `{ version, group, key, value? }`.
 */
const writer = `import { StateStore } from ${JSON.stringify(distState)};
  import { openPostgres, openSqlite } from ${JSON.stringify(distSql)};
  const [kind, target, name, writes] = process.argv.slice(1);
  const db = kind === "postgres" ? await openPostgres(target, { max: 2 }) : await openSqlite(target);
  const s = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 0 });
  const out = [];
  for (let i = 0; i < Number(writes); i++) {
    const value = name + "-" + i;
    out.push({ version: await s.set(name, "k" + i, value), group: name, key: "k" + i, value });
  }
  const ops = [0, 1, 2].map((j) => ({ type: "set", group: name + "-batch", key: "b" + j, value: "b" + j }));
  const { versions } = await s.batch(ops);
  ops.forEach((o, j) => out.push({ version: versions[j], group: o.group, key: o.key, value: o.value }));
  const removed = await s.batch([{ type: "delete", group: name, key: "k0" }]);
  out.push({ version: removed.version, group: name, key: "k0" });
  await s.close();
  await db.close();
  process.stdout.write(out.map((o) => JSON.stringify(o)).join("\\n"));`;

interface Written {
  readonly version: number;
  readonly group: string;
  readonly key: string;
  readonly value?: string;
}

async function runWriter(kind: "sqlite" | "postgres", target: string, name: string): Promise<Written[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--input-type=module", "-e", writer, kind, target, name, String(WRITES)],
    { timeout: 60_000 },
  );
  return stdout.split("\n").map((line) => JSON.parse(line) as Written);
}

async function until(condition: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Two writer processes and this one write the same database at once; this process's callback and
 * watcher must see every change exactly once, in version order, matching the change log.
 */
function crossProcessEvents(kind: "sqlite" | "postgres", open: () => Promise<{ db: Database; target: string }>) {
  it("changes committed by other processes reach this process's watchers once each, in version order", async () => {
    if (!existsSync(distState)) throw new Error("dist/state/index.js is missing: run `npm run build` (npm test does)");
    const { db, target } = await open();
    const state = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 20 });
    try {
      const start = await state.version();
      const seen: StateEvent[] = [];
      const unsubscribe = state.onChange((e) => seen.push(e));
      const watcher = state.watch("*", { bufferSize: 10_000 });
      const local: Written[] = [];
      const localWrites = (async () => {
        for (let i = 0; i < WRITES; i++) {
          const value = `local-${i}`;
          local.push({ version: await state.set("local", `k${i}`, value), group: "local", key: `k${i}`, value });
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      const [a, b] = await Promise.all([runWriter(kind, target, "a"), runWriter(kind, target, "b"), localWrites]);
      const all = [...local, ...(a ?? []), ...(b ?? [])].sort((x, y) => x.version - y.version);
      const end = await state.version();
      expect(all.length).toBe(end - start);
      await until(
        () => seen.length >= all.length,
        () => `${seen.length} of ${all.length} events`,
      );
      unsubscribe();
      expect(seen.map((e) => e.version)).toEqual(all.map((w) => w.version));
      expect(seen.map((e) => [e.type, e.group, e.key, e.value])).toEqual(
        all.map((w) => [w.value === undefined ? "delete" : "set", w.group, w.key, w.value]),
      );
      const { changes } = await state.changesSince(start);
      expect(seen).toEqual(changes);
      const watched: StateEvent[] = [];
      for await (const e of watcher) {
        watched.push(e);
        if (watched.length === all.length) break;
      }
      expect(watched).toEqual(seen);
      expect(watcher.dropped).toBe(0);
    } finally {
      await state.close();
      await db.close();
    }
  }, 90_000);
}

describe("sqlite: events across processes", () => {
  const dir = useTempDir("storeroom-state-xproc-");
  crossProcessEvents("sqlite", async () => {
    const target = join(dir, "shared.db");
    return { db: await openSqlite(target), target };
  });

  it("a local write delivers the other processes' changes committed before it, without the poll", async () => {
    if (!existsSync(distState)) throw new Error("dist/state/index.js is missing: run `npm run build` (npm test does)");
    const target = join(dir, "no-poll.db");
    const state = await StateStore.open({ databasePath: target, purgeIntervalMs: 0, changePollIntervalMs: 0 });
    try {
      const seen: StateEvent[] = [];
      state.onChange((e) => seen.push(e));
      const other = await runWriter("sqlite", target, "other");
      expect(seen).toEqual([]);
      const mine = await state.set("mine", "k", "v");
      // Delivered before set() resolved: the other process's changes first, then this one.
      expect(seen.map((e) => e.version)).toEqual([...other.map((w) => w.version), mine]);
    } finally {
      await state.close();
    }
  }, 60_000);

  it("changePollIntervalMs must be an integer interval", async () => {
    for (const bad of [-1, 1.5, "10"]) {
      await expect(
        StateStore.open({ databasePath: ":memory:", changePollIntervalMs: bad as unknown as number }),
      ).rejects.toThrow(InvalidArgumentError);
    }
  });
});

describe.runIf(hasPostgres)("postgres: events across processes", () => {
  const pg = useFreshPostgresDatabase();
  crossProcessEvents("postgres", async () => ({ db: await openPostgres(pg.url, { max: 4 }), target: pg.url }));
});
