import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newMessageId } from "../../src/bus/message-id.js";

const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{26}$/;
let runs = 0;

function timeOf(id: string): number {
  let t = 0;
  for (const c of id.slice(0, 10)) t = t * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".indexOf(c);
  return t;
}

describe("newMessageId", () => {
  it("is a ULID whose first 10 characters are the time in ms", () => {
    const now = Date.UTC(2026, 11, 7, 4, 30);
    const id = newMessageId(now);
    expect(id).toMatch(CROCKFORD);
    expect(timeOf(id)).toBe(now);
  });

  it("ids made within one millisecond keep increasing, and differ", () => {
    const now = Date.UTC(2030, 0, 1);
    const ids = Array.from({ length: 5000 }, () => newMessageId(now));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(timeOf(id)).toBe(now);
  });

  it("property: ids sort in the order they were made, whatever the clock does (steps back included)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: Date.UTC(2031, 0, 1), max: Date.UTC(2031, 0, 1) + 50 }), {
          minLength: 2,
          maxLength: 200,
        }),
        (times) => {
          // Past every id the earlier tests made, so the sequence starts fresh for this run.
          runs += 1;
          const base = Date.UTC(2031, 0, 1) + 1000 * runs;
          const ids = times.map((t) => newMessageId(base + (t - Date.UTC(2031, 0, 1))));
          for (let i = 1; i < ids.length; i++) expect((ids[i - 1] as string) < (ids[i] as string)).toBe(true);
          // The time part is the latest clock reading seen so far.
          let latest = -1;
          ids.forEach((id, i) => {
            latest = Math.max(latest, base + ((times[i] as number) - Date.UTC(2031, 0, 1)));
            expect(timeOf(id)).toBe(latest);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
