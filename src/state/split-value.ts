/** Go's `strings.Split`: an empty separator splits into characters; an empty value gives `[""]`. */
export function splitValue(value: string, separator: string): string[] {
  if (separator === "") return Array.from(value);
  return value.split(separator);
}

// Go's unicode.IsSpace: ASCII space, \t \n \v \f \r, U+0085, U+00A0 and the Unicode Z spaces.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Go's `strings.Fields`: splits on runs of Unicode whitespace, dropping empty fields. */
export function fieldsOf(value: string): string[] {
  return value.split(SPACE).filter((f) => f !== "");
}
