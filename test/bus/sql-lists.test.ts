import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fixedChunks, inLists, placeholderList, placeholderRows } from "../../src/bus/sql-lists.js";

describe("statement shapes from a fixed set of sizes", () => {
  it("property: chunks add up, come from seven sizes; IN lists keep every value and only pad with the last", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), (n) => {
        const chunks = fixedChunks(n);
        expect(chunks.reduce((a, b) => a + b, 0)).toBe(n);
        for (const c of chunks) expect([256, 64, 16, 4, 3, 2, 1]).toContain(c);
        const values = Array.from({ length: n }, (_, i) => i);
        const lists = inLists(values);
        expect(lists.flat().filter((v, i, all) => all.indexOf(v) === i)).toEqual(values);
        for (const list of lists) expect([256, 64, 16, 4, 3, 2, 1]).toContain(list.length);
      }),
    );
    expect(fixedChunks(3)).toEqual([3]);
    expect(fixedChunks(7)).toEqual([4, 3]);
    expect(placeholderRows(2, 3)).toBe("($1, $2, $3), ($4, $5, $6)");
    expect(placeholderList(3, 2)).toBe("$2, $3, $4");
  });
});
