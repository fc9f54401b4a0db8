import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DuplicateMigrationError, InvalidArgumentError, MigrationOutOfOrderError } from "../../src/errors.js";
import { planMigrations } from "../../src/sql/migration-plan.js";
import { MigrationSet } from "../../src/sql/migration-set.js";

const noop = async () => {};

describe("MigrationSet", () => {
  it("adds in order, chains, extends and reports its size", () => {
    const a = new MigrationSet("s").add({ id: "s/1", up: noop }).add({ id: "s/2", up: noop });
    const b = new MigrationSet("other").add({ id: "s/3", up: noop });
    expect(a.extend(b).size).toBe(3);
    expect(a.list().map((m) => m.id)).toEqual(["s/1", "s/2", "s/3"]);
  });

  it("rejects duplicates, empty ids and missing up functions without changing the set", () => {
    const set = new MigrationSet("s").add({ id: "s/1", up: noop });
    expect(() => set.add({ id: "s/1", up: noop })).toThrow(DuplicateMigrationError);
    expect(() => set.add({ id: "", up: noop })).toThrow(InvalidArgumentError);
    expect(() => set.add({ id: "s/x" } as never)).toThrow(InvalidArgumentError);
    expect(() => set.extend(new MigrationSet("t").add({ id: "s/2", up: noop }).add({ id: "s/1", up: noop }))).toThrow(
      DuplicateMigrationError,
    );
    expect(set.list().map((m) => m.id)).toEqual(["s/1"]);
    expect(() => new MigrationSet("")).toThrow(InvalidArgumentError);
  });
});

describe("planMigrations", () => {
  const set = (...ids: string[]) => ids.reduce((s, id) => s.add({ id, up: noop }), new MigrationSet("p"));
  const applied = (...ids: string[]) => ids.map((id, ordinal) => ({ id, ordinal }));

  it("plans the unapplied suffix", () => {
    const plan = planMigrations(set("a", "b", "c"), applied("a"));
    expect(plan.pending.map((p) => [p.migration.id, p.ordinal])).toEqual([
      ["b", 1],
      ["c", 2],
    ]);
    expect(plan.ahead).toEqual([]);
  });

  it("treats a shorter or empty set as the database being ahead, not as a removal", () => {
    expect(planMigrations(set(), applied("a", "b"))).toEqual({ pending: [], ahead: ["a", "b"] });
    expect(planMigrations(set("a"), applied("a", "b"))).toEqual({ pending: [], ahead: ["b"] });
  });

  it("reports removal, reordering and insertion before applied migrations", () => {
    expect(() => planMigrations(set("a", "c"), applied("a", "b"))).toThrow(/removed/);
    expect(() => planMigrations(set("b", "a"), applied("a", "b"))).toThrow(MigrationOutOfOrderError);
    expect(() => planMigrations(set("a", "x", "b"), applied("a", "b"))).toThrow(MigrationOutOfOrderError);
    expect(() => planMigrations(set("b"), applied("a", "b"))).toThrow(MigrationOutOfOrderError);
  });

  it("accepts exactly the sets that extend or prefix the applied list (property)", () => {
    const ids = fc.uniqueArray(fc.constantFrom("a", "b", "c", "d", "e", "f"), { maxLength: 6 });
    fc.assert(
      fc.property(ids, ids, (appliedIds, setIds) => {
        const compatible =
          appliedIds.slice(0, setIds.length).every((id, i) => setIds[i] === id) &&
          (setIds.length <= appliedIds.length ||
            setIds.slice(0, appliedIds.length).every((id, i) => appliedIds[i] === id));
        let plan: ReturnType<typeof planMigrations> | undefined;
        try {
          plan = planMigrations(set(...setIds), applied(...appliedIds));
        } catch (err) {
          expect(err).toBeInstanceOf(MigrationOutOfOrderError);
        }
        expect(plan !== undefined).toBe(compatible);
        if (plan) {
          expect(plan.pending.map((p) => p.migration.id)).toEqual(setIds.slice(appliedIds.length));
          expect(plan.ahead).toEqual(appliedIds.slice(setIds.length));
        }
      }),
    );
  });
});
