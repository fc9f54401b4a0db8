/** What a redacted secret is replaced with. */
export const REDACTED = "***";

// Query parameters that carry credentials: secretAccessKey, sessionToken, password, sig, ...
const secretParam = /secret|password|passwd|pwd|token|credential|signature|^sig$|key|auth/i;
const urlInText = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/**
 * A URL (object store, database, endpoint) with its credentials replaced by `***`: the
 * password of the userinfo, and every query parameter whose name suggests a secret (keys,
 * tokens, passwords, signatures, credentials). Parameter values that are URLs are redacted in
 * turn. Text that does not parse as a URL (a SQLite path) is returned unchanged.
 *
 * @example
 * ```ts
 * redactUrl("s3://b?endpoint=http://127.0.0.1:9000&accessKeyId=AK&secretAccessKey=SK");
 * // "s3://b?endpoint=http://127.0.0.1:9000&accessKeyId=***&secretAccessKey=***"
 * redactUrl("postgres://app:pw@db/storeroom"); // "postgres://app:***@db/storeroom"
 * ```
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  if (url.protocol === "file:") return text;
  let out = text;
  if (url.password !== "") out = out.replace(`:${url.password}@`, `:${REDACTED}@`);
  const query = out.indexOf("?");
  if (query === -1) return out;
  const hash = out.indexOf("#", query);
  const end = hash === -1 ? out.length : hash;
  const params = out
    .slice(query + 1, end)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq === -1) return pair;
      const name = decodeSafely(pair.slice(0, eq));
      const value = pair.slice(eq + 1);
      if (secretParam.test(name)) return `${pair.slice(0, eq)}=${REDACTED}`;
      const decoded = decodeSafely(value);
      const redacted = decoded.includes("://") ? redactUrl(decoded) : decoded;
      return redacted === decoded ? pair : `${pair.slice(0, eq)}=${encodeURIComponent(redacted)}`;
    });
  return `${out.slice(0, query + 1)}${params.join("&")}${out.slice(end)}`;
}

/** Free text (a log line, an error message) with every URL in it passed through {@link redactUrl}. */
export function redactText(text: string): string {
  return text.replace(urlInText, (match) => redactUrl(match));
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}
