import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { type FileTrailer, isMissing, statObjectFile } from "./file-object-format.js";
import { compareKeys, hasLoneSurrogate } from "./object-key.js";
import type { ObjectInfo } from "./object-store.js";

// Object files end in ".obj" and folders in ".dir", so key "a" and key "a/b" never collide.
export const OBJECT_SUFFIX = ".obj";
export const FOLDER_SUFFIX = ".dir";

/** The on-disk path of `key` under the `objects/` folder. */
export function objectFilePath(objectsDir: string, segments: readonly string[]): string {
  const folders = segments.slice(0, -1).map((s) => s + FOLDER_SUFFIX);
  return join(objectsDir, ...folders, `${segments[segments.length - 1]}${OBJECT_SUFFIX}`);
}

/** ObjectInfo from a key and its file's trailer. */
export function fileObjectInfo(key: string, file: { trailer: FileTrailer; size: number }): ObjectInfo {
  const { etag, lastModified, contentType } = file.trailer;
  return { key, size: file.size, etag, lastModified, ...(contentType === undefined ? {} : { contentType }) };
}

/**
 * Up to `want` objects whose key starts with `prefix` and sorts after `after`, in UTF-8 key
 * order. Each folder's entries are sorted as their keys sort (a folder as `name/`), so a
 * depth-first walk yields global key order; folders wholly before `after` or outside the
 * prefix are skipped.
 */
export async function listObjectFiles(
  objectsDir: string,
  prefix: string,
  after: string | undefined,
  want: number,
): Promise<ObjectInfo[]> {
  // Start in the deepest folder the prefix fully names; the walk filters the rest.
  const folders = prefix.split("/").slice(0, -1);
  const start = folders.every(isPlainSegment) ? folders : [];
  const found: ObjectInfo[] = [];
  await walk(
    join(objectsDir, ...start.map((s) => s + FOLDER_SUFFIX)),
    start.map((s) => `${s}/`).join(""),
    { prefix, after, want },
    found,
  );
  return found;
}

async function walk(
  dir: string,
  keyPrefix: string,
  query: { prefix: string; after: string | undefined; want: number },
  found: ObjectInfo[],
): Promise<void> {
  const names = await readdir(dir).catch((err) => {
    if (isMissing(err)) return [] as string[];
    throw err;
  });
  const entries = names
    .filter((name) => name.endsWith(OBJECT_SUFFIX) || name.endsWith(FOLDER_SUFFIX))
    .map((name) => {
      const folder = name.endsWith(FOLDER_SUFFIX);
      const segment = name.slice(0, -(folder ? FOLDER_SUFFIX : OBJECT_SUFFIX).length);
      return { name, folder, key: keyPrefix + segment + (folder ? "/" : "") };
    })
    .sort((a, b) => compareKeys(a.key, b.key));
  const { prefix, after } = query;
  for (const entry of entries) {
    if (found.length >= query.want) return;
    if (entry.folder) {
      const overlaps = entry.key.startsWith(prefix) || prefix.startsWith(entry.key);
      const passed = after !== undefined && compareKeys(after, entry.key) > 0 && !after.startsWith(entry.key);
      if (overlaps && !passed) await walk(join(dir, entry.name), entry.key, query, found);
    } else if (entry.key.startsWith(prefix) && (after === undefined || compareKeys(entry.key, after) > 0)) {
      const info = await statObjectFile(join(dir, entry.name));
      if (info) found.push(fileObjectInfo(entry.key, info));
    }
  }
}

function isPlainSegment(segment: string): boolean {
  return (
    segment !== "" &&
    segment !== "." &&
    segment !== ".." &&
    !segment.includes("\\") &&
    !segment.includes("\0") &&
    !hasLoneSurrogate(segment)
  );
}
