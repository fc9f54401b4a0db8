import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const idPattern = /^[0-9a-f]{16}$/;

/**
 * The id of the writer a cache directory stands for, kept in `<cacheRoot>/.writer` (created
 * on first use). A restarted process on the same cache is the same writer and recognises the
 * manifests it published; a new or emptied cache is a new writer. Never copy a cache directory
 * to run it twice: both copies would be the same writer.
 */
export function readWriterId(cacheRoot: string): string {
  const path = join(cacheRoot, ".writer");
  try {
    const id = readFileSync(path, "utf8").trim();
    if (idPattern.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const id = randomBytes(8).toString("hex");
  writeFileSync(path, id, { mode: 0o600 });
  return id;
}
