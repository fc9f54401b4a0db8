import { InvalidArgumentError } from "../errors.js";
import type { UrlKeyMapper } from "./url-key-mapper.js";

/**
 * How a field references files:
 * - `file`: a key string (empty / null = none);
 * - `files`: an array of key strings;
 * - `fileRecord`: a record whose VALUES are keys;
 * - `richtext`: HTML whose `src` / `href` URLs are mapped to keys;
 * - `markdown`: markdown whose link / image / autolink URLs are mapped to keys.
 * Unmappable URLs are ignored.
 */
export type FileFieldKind = "file" | "files" | "fileRecord" | "richtext" | "markdown";

/**
 * The file-reference fields of a model: dotted paths to their kind. A `*` segment walks every
 * element of an array or value of a record, e.g. `{ "sections.*.image": "file" }`.
 */
export type FileFields = Readonly<Record<string, FileFieldKind>>;

const HTML_URL = /\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi;
const MD_LINK = /\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
const MD_AUTOLINK = /<([a-z][a-z0-9+.-]*:[^>\s]+|\/[^>\s]*)>/gi;
const MD_REFERENCE = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm;

/** Every distinct key `model` references through `fields`, in first-seen order. */
export function extractFileKeys(model: unknown, fields: FileFields, mapper: UrlKeyMapper): string[] {
  const keys = new Set<string>();
  if (model === null || model === undefined) return [];
  for (const [path, kind] of Object.entries(fields)) {
    for (const value of valuesAt(model, path.split("."))) collect(value, kind, mapper, keys, path);
  }
  return [...keys];
}

function valuesAt(value: unknown, segments: readonly string[]): unknown[] {
  if (segments.length === 0) return [value];
  if (value === null || typeof value !== "object") return [];
  const [head, ...rest] = segments as [string, ...string[]];
  if (head === "*") return Object.values(value).flatMap((v) => valuesAt(v, rest));
  return valuesAt((value as Record<string, unknown>)[head], rest);
}

function collect(value: unknown, kind: FileFieldKind, mapper: UrlKeyMapper, keys: Set<string>, path: string): void {
  if (value === null || value === undefined || value === "") return;
  const wrong = () =>
    new InvalidArgumentError(`file field ${path} (${kind}) holds ${typeof value}`, { op: "files.extract" });
  switch (kind) {
    case "file":
      if (typeof value !== "string") throw wrong();
      keys.add(value);
      return;
    case "files":
    case "fileRecord": {
      if (typeof value !== "object") throw wrong();
      if (kind === "files" && !Array.isArray(value)) throw wrong();
      for (const item of Object.values(value)) {
        if (item === null || item === undefined || item === "") continue;
        if (typeof item !== "string") throw wrong();
        keys.add(item);
      }
      return;
    }
    case "richtext":
    case "markdown": {
      if (typeof value !== "string") throw wrong();
      const patterns = kind === "richtext" ? [HTML_URL] : [MD_LINK, MD_AUTOLINK, MD_REFERENCE, HTML_URL];
      for (const pattern of patterns) {
        for (const m of value.matchAll(pattern)) {
          const url = decodeEntities(m[1] ?? m[2] ?? m[3] ?? "");
          const key = url === "" ? undefined : mapper.urlToKey(url);
          if (key !== undefined) keys.add(key);
        }
      }
      return;
    }
  }
}

function decodeEntities(text: string): string {
  return text
    .replace(/&amp;/g, "&")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">");
}
