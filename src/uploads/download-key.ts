import { InvalidKeyError } from "../errors.js";
import { assertObjectKey } from "../objects/index.js";

/**
 * Decodes a key taken from a download URL path (URL-decoded exactly once) and validates it:
 * empty, absolute, `..` anywhere, backslash, NUL, redundant (`//`) or trailing slashes ->
 * {@link InvalidKeyError}.
 *
 * @example
 * ```ts
 * parseDownloadKey("pub/2026/05/14/a%20b.png"); // "pub/2026/05/14/a b.png"
 * parseDownloadKey("pub/../priv/x"); // throws InvalidKeyError
 * ```
 */
export function parseDownloadKey(encoded: string): string {
  const op = "uploads.parseDownloadKey";
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch (err) {
    throw new InvalidKeyError("download key is not valid percent-encoding", { op, cause: err });
  }
  if (key.includes("..")) throw new InvalidKeyError("download key must not contain ..", { op });
  assertObjectKey(key, op);
  return key;
}
