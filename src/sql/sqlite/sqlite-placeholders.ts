/** A statement text compiled for better-sqlite3's positional binding. */
export interface PositionalSql {
  /** The text with every `$n` placeholder replaced by `?`. */
  readonly sql: string;
  /** For each `?`, in order, the 1-based index of the parameter it takes; `undefined` when that is exactly 1..n. */
  readonly order: readonly number[] | undefined;
}

/**
 * Rewrites `$1`, `$2`, ... placeholders to positional `?` once per statement text, because
 * better-sqlite3 binds arrays positionally ~25% faster than the named object it needs for
 * `$n`. A small scanner skips string literals, quoted identifiers and comments, so a `$1`
 * inside `'...'` or `"..."` is left alone. Returns `undefined` when the text has no `$n`.
 */
export function toPositional(sql: string): PositionalSql | undefined {
  let out = "";
  const order: number[] = [];
  let i = 0;
  let copied = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "'" || c === '"' || c === "`") {
      i = skipQuoted(sql, i, c);
    } else if (c === "[") {
      const end = sql.indexOf("]", i + 1);
      i = end === -1 ? sql.length : end + 1;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i + 2);
      i = end === -1 ? sql.length : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (c === "$" && isDigit(sql[i + 1]) && !isIdentifierChar(sql[i - 1])) {
      let j = i + 1;
      while (isDigit(sql[j])) j++;
      order.push(Number(sql.slice(i + 1, j)));
      out += `${sql.slice(copied, i)}?`;
      copied = j;
      i = j;
    } else {
      i++;
    }
  }
  if (order.length === 0) return undefined;
  out += sql.slice(copied);
  const identity = order.every((n, k) => n === k + 1);
  return { sql: out, order: identity ? undefined : order };
}

function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return i;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

function isIdentifierChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_$]/.test(c);
}
