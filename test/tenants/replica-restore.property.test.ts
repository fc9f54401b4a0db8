import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { openSqlite } from "../../src/sql/index.js";
import { restoreTenant, TenantKey, tenantHistory } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

type Op =
  | { kind: "insert"; rows: number; size: number }
  | { kind: "update"; every: number }
  | { kind: "delete"; every: number }
  | { kind: "index" }
  | { kind: "vacuum" }
  | { kind: "evict" }
  | { kind: "outsideCheckpoint" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("insert" as const),
      rows: fc.integer({ min: 1, max: 8 }),
      size: fc.constantFrom(10, 500, 6000),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("update" as const), every: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), every: fc.integer({ min: 2, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("index" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("vacuum" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("evict" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("outsideCheckpoint" as const) }) },
);

/** Everything a database holds: its schema and every row, in a stable order. */
async function dump(db: { all<T>(sql: string): Promise<T[]> }): Promise<string> {
  const schema = await db.all<{ name: string; sql: string }>(
    "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
  );
  const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  const rows: unknown[] = [];
  for (const t of tables) rows.push(await db.all(`SELECT * FROM "${t.name}" ORDER BY rowid`));
  return JSON.stringify({ schema, rows });
}

describe("point-in-time restore (model)", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-restore-model-");

  it("restoring any transaction or any time of a random history gives the database exactly as it was then", async () => {
    let run = 0;
    await fc.assert(
      // Each operation is followed by a pause of 0-2 ms on the store's clock: several commits share a millisecond.
      fc.asyncProperty(fc.array(fc.tuple(op, fc.nat(2)), { minLength: 1, maxLength: 18 }), async (ops) => {
        run += 1;
        const objects = new MemoryObjectStore();
        // Small thresholds: checkpoints, snapshots, packs and restarted WALs all happen within a few writes.
        const store = await t.open({
          objectStore: objects,
          durability: "sync",
          walCheckpointBytes: 16 * 1024,
          snapshotFraction: 0.4,
          orphanGraceMs: 0,
        });
        const states = new Map<number, string>();
        /** The state after each operation and the clock time it was published at (sync: at its commit). */
        const timeline: { time: number; state: string }[] = [];
        const record = async (): Promise<void> => {
          const view = await store.get(ada); // resident again after an eviction
          const txid = (await store.inspect(ada)).replica?.txid ?? 0;
          const state = await dump(view);
          states.set(txid, state);
          timeline.push({ time: t.clock.now(), state });
        };
        const db = await store.get(ada);
        await db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body BLOB)");
        await record();
        let next = 0;
        for (const [o, pause] of ops) {
          if (o.kind === "insert") {
            await db.transaction(async (tx) => {
              for (let i = 0; i < o.rows; i++)
                await tx.run("INSERT INTO notes VALUES ($1, randomblob($2))", [next++, o.size]);
            });
          } else if (o.kind === "update")
            await db.run("UPDATE notes SET body = randomblob(40) WHERE id % $1 = 0", [o.every]);
          else if (o.kind === "delete") await db.run("DELETE FROM notes WHERE id % $1 = 1", [o.every]);
          else if (o.kind === "index") await db.run("CREATE INDEX IF NOT EXISTS notes_body ON notes (body)");
          else if (o.kind === "vacuum") await db.run("VACUUM");
          else if (o.kind === "evict") await store.evict(ada);
          else {
            // Another tool checkpoints the WAL away: the frames since the last publication can no longer be read.
            const outside = await openSqlite(ada.localPath(store.cacheRoot), { readConnection: false });
            await outside.checkpoint("truncate");
            await outside.close();
            await db.run("INSERT INTO notes VALUES ($1, 'after an outside checkpoint')", [next++]);
          }
          await record();
          t.clock.advance(pause);
        }
        const history = await tenantHistory(objects, ada);
        expect(history?.txid).toBe(Math.max(...states.keys()));
        for (const [txid, expected] of states) {
          const to = join(root, `r${run}-${txid}.db`);
          await restoreTenant(objects, ada, txid, to);
          const restored = await openSqlite(to, { readonly: true });
          expect(await restored.get("PRAGMA integrity_check")).toEqual({ integrity_check: "ok" });
          expect(await dump(restored)).toBe(expected);
          await restored.close();
        }
        // By time: every published instant, and the millisecond before it when nothing was published then.
        const times = new Set(timeline.map((e) => e.time));
        const points = [...times, ...[...times].map((time) => time - 1).filter((time) => !times.has(time))];
        for (const time of points.filter((p) => p >= (timeline[0] as { time: number }).time)) {
          const expected = timeline.filter((e) => e.time <= time).at(-1)?.state;
          const to = join(root, `r${run}-at-${time}.db`);
          await restoreTenant(objects, ada, new Date(time), to);
          const restored = await openSqlite(to, { readonly: true });
          expect(await dump(restored)).toBe(expected);
          await restored.close();
        }
        await store.close();
      }),
      { numRuns: 20 },
    );
  }, 120_000);
});
