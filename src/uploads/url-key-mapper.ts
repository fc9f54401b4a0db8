import { isStoreError } from "../errors.js";
import { parseDownloadKey } from "./download-key.js";

/**
 * Maps between the URLs embedded in rich text / markdown and object keys, so `Files` can find
 * the files a document references.
 *
 * @example
 * ```ts
 * const mapper = proxyUrlKeyMapper("/storage/files/");
 * mapper.urlToKey("https://app.example/storage/files/pub/2026/05/14/a.png"); // "pub/2026/05/14/a.png"
 * mapper.keyToUrl("pub/2026/05/14/a.png"); // "/storage/files/pub/2026/05/14/a.png"
 * ```
 */
export interface UrlKeyMapper {
  /** The key a URL points at, or `undefined` when it is not one of ours (such URLs are ignored). */
  urlToKey(url: string): string | undefined;
  /** The URL to embed for a key. */
  keyToUrl(key: string): string;
}

/**
 * URLs of the download route: `<prefix><key>`, key percent-encoded per segment. A relative
 * prefix (`/v1/files/`, the route of `storeroom serve`) matches that path on any host and in
 * relative URLs; an absolute one (`https://cdn.example/files/`) only URLs of its own origin.
 */
export function proxyUrlKeyMapper(prefix = "/storage/files/"): UrlKeyMapper {
  const absolute = absoluteUrl(prefix);
  const pathPrefix = absolute?.pathname ?? prefix;
  return Object.freeze({
    urlToKey(url: string): string | undefined {
      // URL parsing would resolve dot segments; such URLs are not ours to interpret.
      if (url.includes("..")) return undefined;
      let parsed: URL;
      try {
        parsed = new URL(url, "http://relative.invalid");
      } catch {
        return undefined;
      }
      if (absolute !== undefined && parsed.origin !== absolute.origin) return undefined;
      if (!parsed.pathname.startsWith(pathPrefix)) return undefined;
      return validKey(parsed.pathname.slice(pathPrefix.length));
    },
    keyToUrl(key: string): string {
      return prefix + key.split("/").map(encodeURIComponent).join("/");
    },
  });
}

/** URLs that are keys themselves (valid keys map to themselves, anything else is ignored). */
export const identityUrlKeyMapper: UrlKeyMapper = Object.freeze({
  urlToKey: (url: string) => validKey(encodeURIComponent(url).replaceAll("%2F", "/")),
  keyToUrl: (key: string) => key,
});

function validKey(encoded: string): string | undefined {
  try {
    return parseDownloadKey(encoded);
  } catch (err) {
    if (isStoreError(err, "INVALID_KEY")) return undefined;
    throw err;
  }
}

function absoluteUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
