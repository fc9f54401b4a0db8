/**
 * Statement shapes for lists of any length from a fixed handful of sizes, so the few prepared
 * statements they produce stay in the engine's statement cache whatever the batch size.
 */
// 2 and 3 too: one message at a time commits an ack and a send (3 audit rows) in one statement.
const SIZES = [256, 64, 16, 4, 3, 2, 1] as const;

/** Sizes from the fixed set that add up to `n`, largest first. */
export function fixedChunks(n: number): number[] {
  const out: number[] = [];
  let left = n;
  for (const size of SIZES) {
    for (; left >= size; left -= size) out.push(size);
  }
  return out;
}

const rowTexts = new Map<string, string>();

/** `rows` tuples of `columns` placeholders: `($1, $2), ($3, $4)`. */
export function placeholderRows(rows: number, columns: number): string {
  const key = `${rows}x${columns}`;
  const known = rowTexts.get(key);
  if (known !== undefined) return known;
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let c = 1; c <= columns; c++) cells.push(`$${r * columns + c}`);
    tuples.push(`(${cells.join(", ")})`);
  }
  const text = tuples.join(", ");
  if (SIZES.includes(rows as (typeof SIZES)[number])) rowTexts.set(key, text);
  return text;
}

const listTexts = new Map<string, string>();

/** `$from, $from+1, ...`: `count` placeholders for an `IN` list of one of the fixed sizes. */
export function placeholderList(count: number, from = 1): string {
  const key = `${count}@${from}`;
  let text = listTexts.get(key);
  if (text === undefined) {
    text = Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ");
    listTexts.set(key, text);
  }
  return text;
}

/**
 * `values` cut into lists for `IN (...)`, each padded with its last value up to a fixed size
 * (a repeated value changes nothing in an `IN` list).
 */
export function inLists<T>(values: readonly T[]): T[][] {
  const lists: T[][] = [];
  for (let i = 0; i < values.length; i += SIZES[0]) {
    const list = values.slice(i, i + SIZES[0]);
    const size = [...SIZES].reverse().find((s) => s >= list.length) as number;
    while (list.length < size) list.push(list[list.length - 1] as T);
    lists.push(list);
  }
  return lists;
}

/**
 * `build` memoized by list size (the sizes come from the fixed set): a statement is then the
 * same string every time, so the statement cache finds it without hashing a freshly built text
 * of many placeholders.
 */
export function textPerSize(build: (size: number) => string): (size: number) => string {
  const texts = new Map<number, string>();
  return (size) => {
    let text = texts.get(size);
    if (text === undefined) {
      text = build(size);
      texts.set(size, text);
    }
    return text;
  };
}
