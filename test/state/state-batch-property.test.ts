import fc from "fast-check";
import { expect, it } from "vitest";
import { QuotaExceededError, StoreError, VersionConflictError } from "../../src/errors.js";
import type { Database } from "../../src/sql/index.js";
import type { BatchOperation, StateEvent, StateStore, VersionCheck } from "../../src/state/index.js";
import { forEachEngine, type StateHarness } from "./state-harness.js";

const GROUPS = ["g0", "g1", "g2"];
const KEYS = ["a", "b", "c"];
/** Writing this value fails inside the database (a trigger), after earlier operations were applied. */
const POISON = "boom";

type Snapshot = Map<string, { value: string; version: number }>;

const groupArb = fc.constantFrom(...GROUPS);
const keyArb = fc.constantFrom(...KEYS);
const opArb = fc.oneof(
  fc.record({
    type: fc.constant("set" as const),
    group: groupArb,
    key: keyArb,
    value: fc.oneof(
      { weight: 12, arbitrary: fc.string({ maxLength: 4 }) },
      { weight: 1, arbitrary: fc.constant(POISON) },
    ),
  }),
  fc.record({ type: fc.constant("delete" as const), group: groupArb, key: keyArb }),
);
/** How a check is made from the current entry: right, stale, or "absent". */
const checkArb = fc.record({
  group: groupArb,
  key: keyArb,
  kind: fc.constantFrom("right", "right", "stale", "absent"),
});
const initialArb = fc.array(fc.record({ group: groupArb, key: keyArb, value: fc.string({ maxLength: 4 }) }), {
  maxLength: 6,
});

/** Makes writing {@link POISON} fail in the engine itself. */
async function poison(h: StateHarness, db: Database): Promise<void> {
  if (h.engine === "sqlite") {
    for (const event of ["INSERT", "UPDATE"]) {
      await db.run(
        `CREATE TRIGGER poison_${event.toLowerCase()} BEFORE ${event} ON entries WHEN NEW.entry_value = '${POISON}' ` +
          "BEGIN SELECT RAISE(ABORT, 'poisoned value'); END",
      );
    }
    return;
  }
  await db.run(
    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.entry_value = 'boom' THEN " +
      "RAISE EXCEPTION 'poisoned value'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
  );
  await db.run("CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON entries FOR EACH ROW EXECUTE FUNCTION poison()");
}

async function snapshot(s: StateStore, prefix = ""): Promise<Snapshot> {
  const out: Snapshot = new Map();
  for (const g of GROUPS) {
    for (const e of await s.getEntries(prefix + g)) out.set(`${g}/${e.key}`, { value: e.value, version: e.version });
  }
  return out;
}

async function reset(s: StateStore, prefix = ""): Promise<void> {
  for (const g of GROUPS) await s.deleteGroup(prefix + g);
}

/** The expected outcome of a batch over `before`: the entries after it, or why it fails. */
function model(
  before: Snapshot,
  ops: readonly BatchOperation[],
  checks: readonly VersionCheck[],
  maxKeys = 0,
  otherKeys = 0,
): { after: Snapshot; changes: number } | "conflict" | "poison" | "quota" {
  const after: Snapshot = new Map(before);
  let changes = 0;
  for (const o of ops) {
    const id = `${o.group}/${o.key}`;
    if (o.type === "set") {
      after.set(id, { value: o.value, version: -1 });
      changes++;
    } else if (after.delete(id)) {
      changes++;
    }
  }
  // The quota is checked first (as for a single scoped write), then the versions, then the writes run.
  if (maxKeys > 0 && after.size + otherKeys > maxKeys && after.size > before.size) return "quota";
  for (const c of checks) {
    if ((before.get(`${c.group}/${c.key}`)?.version ?? null) !== c.version) return "conflict";
  }
  if (ops.some((o) => o.type === "set" && o.value === POISON)) return "poison";
  return { after, changes };
}

function checksFrom(before: Snapshot, made: readonly { group: string; key: string; kind: string }[]): VersionCheck[] {
  return made.map(({ group, key, kind }) => {
    const actual = before.get(`${group}/${key}`)?.version ?? null;
    const version = kind === "absent" ? null : kind === "stale" ? (actual ?? 0) + 1000 : actual;
    return { group, key, version };
  });
}

function values(s: Snapshot): Map<string, string> {
  return new Map([...s].map(([id, e]) => [id, e.value]));
}

forEachEngine("atomic batches across groups", (h) => {
  it("a batch over several groups applies everything or nothing: failed checks, a failing write midway (fast-check)", async () => {
    const db = await h.freshDatabase();
    const s = await h.openOn(db, { purgeIntervalMs: 0, changePollIntervalMs: 0 });
    await poison(h, db);
    const events: StateEvent[] = [];
    s.onChange((e) => events.push(e));
    await fc.assert(
      fc.asyncProperty(
        initialArb,
        fc.array(opArb, { minLength: 1, maxLength: 6 }),
        fc.array(checkArb, { maxLength: 3 }),
        async (initial, ops, made) => {
          await reset(s);
          for (const i of initial) await s.set(i.group, i.key, i.value);
          const before = await snapshot(s);
          const version = await s.version();
          const checks = checksFrom(before, made);
          const expected = model(before, ops, checks);
          events.length = 0;
          const outcome = await s.batch(ops, { checks }).then(
            (r) => r,
            (err: unknown) => err,
          );
          if (typeof expected === "string") {
            expect(outcome).toBeInstanceOf(expected === "conflict" ? VersionConflictError : StoreError);
            expect(await snapshot(s)).toEqual(before);
            expect(await s.version()).toBe(version);
            expect(events).toEqual([]);
            return;
          }
          expect(outcome).not.toBeInstanceOf(Error);
          expect(values(await snapshot(s))).toEqual(values(expected.after));
          expect(await s.version()).toBe(version + expected.changes);
          expect(events.map((e) => e.version)).toEqual(
            Array.from({ length: expected.changes }, (_, i) => version + 1 + i),
          );
        },
      ),
      { numRuns: h.engine === "sqlite" ? 60 : 25 },
    );
    await s.close();
  }, 120_000);

  it("a batch that fails inside a transaction leaves nothing behind when the callback catches it and commits", async () => {
    const db = await h.freshDatabase();
    const s = await h.openOn(db, { purgeIntervalMs: 0, changePollIntervalMs: 0 });
    await poison(h, db);
    await s.set("g0", "a", "before");
    const caught = await s.transaction(async (tx) => {
      await tx.set("g2", "marker", "committed");
      return tx
        .batch([
          { type: "set", group: "g0", key: "a", value: "changed" },
          { type: "delete", group: "g1", key: "x" },
          { type: "set", group: "g1", key: "b", value: "new" },
          { type: "set", group: "g2", key: "c", value: POISON },
        ])
        .then(
          () => undefined,
          (err: unknown) => err,
        );
    });
    expect(caught).toBeInstanceOf(StoreError);
    expect(values(await snapshot(s))).toEqual(
      new Map([
        ["g0/a", "before"],
        ["g2/marker", "committed"],
      ]),
    );
    await s.close();
  });

  it("scoped batches: quota as a whole, all or nothing, also inside a transaction that catches the error and commits (fast-check)", async () => {
    const db = await h.freshDatabase();
    const s = await h.openOn(db, { purgeIntervalMs: 0, changePollIntervalMs: 0 });
    await poison(h, db);
    const maxKeys = 4;
    const tenant = s.scoped("t", { maxKeys });
    await fc.assert(
      fc.asyncProperty(
        initialArb,
        fc.array(opArb, { minLength: 1, maxLength: 6 }),
        fc.array(checkArb, { maxLength: 2 }),
        fc.boolean(),
        async (initial, ops, made, inTransaction) => {
          await reset(s, "t:");
          // One key is left for the marker written inside the transaction.
          for (const i of initial.slice(0, maxKeys - 1)) await tenant.setIn(i.group, i.key, i.value);
          const before = await snapshot(s, "t:");
          const checks = checksFrom(before, made);
          const expected = model(before, ops, checks, maxKeys, inTransaction ? 1 : 0);
          const outcome = inTransaction
            ? await tenant.transaction(async (tx) => {
                await tx.setIn("marker", "m", "committed");
                try {
                  await tx.batch(ops, { checks });
                  return undefined;
                } catch (err) {
                  return err;
                }
              })
            : await tenant.batch(ops, { checks }).then(
                () => undefined,
                (err: unknown) => err,
              );
          const after = await snapshot(s, "t:");
          if (typeof expected === "string") {
            const kind = { conflict: VersionConflictError, poison: StoreError, quota: QuotaExceededError }[expected];
            expect(outcome).toBeInstanceOf(kind);
            expect(after).toEqual(before);
          } else {
            expect(outcome).toBeUndefined();
            expect(values(after)).toEqual(values(expected.after));
          }
          if (inTransaction) expect(await tenant.getFrom("marker", "m")).toBe("committed");
          await tenant.deleteGroup("marker");
        },
      ),
      { numRuns: h.engine === "sqlite" ? 60 : 25 },
    );
    // Other namespaces are untouched and the quota still holds.
    expect(await s.countAll("t:")).toBeLessThanOrEqual(maxKeys);
    await s.close();
  }, 120_000);
});
