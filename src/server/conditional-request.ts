/** The outcome of a request's preconditions against the current entity tag. */
export type PreconditionResult = "proceed" | "not-modified" | "failed";

/**
 * Evaluates `If-Match` and `If-None-Match` (RFC 9110 §13.2.2, strong comparison for
 * `If-Match`, weak for `If-None-Match`) against `etag` (quoted). `If-Match` failing ->
 * `failed` (412); `If-None-Match` matching -> `not-modified` (304) for GET and HEAD, `failed`
 * for other methods.
 */
export function evaluatePreconditions(
  headers: { "if-match"?: string | undefined; "if-none-match"?: string | undefined },
  etag: string,
  method: string,
): PreconditionResult {
  const ifMatch = headers["if-match"];
  if (ifMatch !== undefined && !matches(ifMatch, etag, false)) return "failed";
  const ifNoneMatch = headers["if-none-match"];
  if (ifNoneMatch !== undefined && matches(ifNoneMatch, etag, true)) {
    return method === "GET" || method === "HEAD" ? "not-modified" : "failed";
  }
  return "proceed";
}

/** Whether an `If-Range` validator still names `etag` (strong comparison; dates are not accepted). */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  return header === undefined || (!header.startsWith("W/") && header.trim() === etag);
}

function matches(list: string, etag: string, weak: boolean): boolean {
  if (list.trim() === "*") return true;
  const strip = (tag: string) => (weak ? tag.replace(/^W\//, "") : tag);
  return list
    .split(",")
    .map((tag) => tag.trim())
    .some((tag) => tag !== "" && (weak || !tag.startsWith("W/")) && strip(tag) === strip(etag));
}
