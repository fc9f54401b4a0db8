import { randomBytes } from "node:crypto";

/** `$first, $first+1, ...` placeholders for an `IN (...)` list of `count` values. */
export function placeholders(count: number, first = 1): string {
  return Array.from({ length: count }, (_, i) => `$${first + i}`).join(", ");
}

/** Splits `items` into chunks of at most `size` (bounded `IN (...)` lists). */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

let lastMs = -1;
let sequence = 0;

/**
 * A 32-hex-character id that sorts by creation time (ms, then a per-process sequence, then
 * random bits). Rows inserted together land next to each other in the primary-key B-tree, so
 * batch deletes touch a few pages instead of one random page per row.
 */
export function sortableId(now: number): string {
  if (now === lastMs) sequence++;
  else {
    lastMs = now;
    sequence = 0;
  }
  return (
    Math.max(0, Math.floor(now)).toString(16).padStart(12, "0") +
    (sequence & 0xffffff).toString(16).padStart(6, "0") +
    randomBytes(7).toString("hex")
  );
}
