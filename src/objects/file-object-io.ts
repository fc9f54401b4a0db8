import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { InvalidArgumentError } from "../errors.js";
import { contentChunks, isMissing, openObjectFile } from "./file-object-format.js";

/** Streams the parts in order, one open file at a time; a part replaced since it was checked fails the completion. */
export async function* concatParts(
  files: readonly { path: string; etag: string }[],
  op: string,
): AsyncGenerator<Uint8Array> {
  for (const { path, etag } of files) {
    const opened = await openObjectFile(path);
    if (!opened || opened.trailer.etag !== etag) {
      await opened?.handle.close();
      throw new InvalidArgumentError("a part was replaced or removed while the upload was being completed", { op });
    }
    try {
      yield* contentChunks(opened);
    } finally {
      await opened.handle.close();
    }
  }
}

/** Removes entries of `dir` last modified before `before` (ms), left by crashed writers. */
export async function removeStaleTemps(dir: string, before: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const info = await stat(join(dir, name)).catch(() => null);
    if (info && info.mtimeMs < before) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/** Renames a finished temp file over `path` (creating folders; retried if a delete pruned them meanwhile) and fsyncs the folder. */
export async function publish(temp: string, path: string): Promise<void> {
  const dir = dirname(path);
  for (let attempt = 0; ; attempt++) {
    await mkdir(dir, { recursive: true });
    try {
      await rename(temp, path);
      break;
    } catch (err) {
      if (!isMissing(err) || attempt >= 10) throw err;
    }
  }
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
