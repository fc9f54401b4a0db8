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
