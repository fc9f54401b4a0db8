/** What a `Range` header asks of an object of a known size. */
export type RangeRequest =
  | { readonly kind: "full" }
  | { readonly kind: "partial"; readonly start: number; readonly end: number }
  | { readonly kind: "unsatisfiable" };

/**
 * Interprets a `Range` header (RFC 9110 §14) against an object of `size` bytes. One
 * `bytes=a-b`, `bytes=a-` or `bytes=-n` range is served as `partial` (`end` exclusive,
 * clamped); a missing, malformed, non-`bytes` or multi-range header is served whole (`full`,
 * which the RFC allows); a range that starts past the end is `unsatisfiable` (416).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: "full" };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return { kind: "full" };
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return { kind: "full" };
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) return { kind: "unsatisfiable" };
    return size === 0 ? { kind: "unsatisfiable" } : { kind: "partial", start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(first);
  if (start >= size) return { kind: "unsatisfiable" };
  // A last position past the end (however many digits) means the end.
  const end = last === "" ? size : Math.min(Number(last) + 1, size);
  if (!Number.isSafeInteger(start) || end <= start) return { kind: "full" };
  return { kind: "partial", start, end };
}
