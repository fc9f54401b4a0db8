import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toPositional } from "../../src/sql/sqlite/sqlite-placeholders.js";

describe("toPositional", () => {
  it("rewrites $n in order and reports identity order as undefined", () => {
    expect(toPositional("SELECT * FROM t WHERE a = $1 AND b = $2")).toEqual({
      sql: "SELECT * FROM t WHERE a = ? AND b = ?",
      order: undefined,
    });
  });

  it("maps reused and reordered placeholders", () => {
    expect(toPositional("SELECT $2, $1, $2")).toEqual({ sql: "SELECT ?, ?, ?", order: [2, 1, 2] });
  });

  it("leaves $n inside literals, quoted identifiers and comments alone", () => {
    const sql = `SELECT '$1', "$2", [$3], \`$4\` -- $5\n/* $6 */ FROM t WHERE x = $1 AND y = 'it''s $2'`;
    expect(toPositional(sql)).toEqual({
      sql: `SELECT '$1', "$2", [$3], \`$4\` -- $5\n/* $6 */ FROM t WHERE x = ? AND y = 'it''s $2'`,
      order: undefined,
    });
  });

  it("ignores $ inside identifiers and returns undefined without placeholders", () => {
    expect(toPositional("SELECT a$1 FROM t")).toBeUndefined();
    expect(toPositional("SELECT ? FROM t")).toBeUndefined();
  });

  it("never changes text inside single-quoted literals (property)", () => {
    fc.assert(
      fc.property(
        fc.string().map((s) => s.replaceAll("'", "''")),
        fc.integer({ min: 1, max: 9 }),
        (body, n) => {
          const sql = `SELECT '${body}' AS s WHERE x = $${n}`;
          const out = toPositional(sql);
          expect(out?.sql).toBe(`SELECT '${body}' AS s WHERE x = ?`);
        },
      ),
    );
  });
});
