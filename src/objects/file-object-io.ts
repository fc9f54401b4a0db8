import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { isMissing } from "./file-object-format.js";

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
  // The folder usually exists: it is created only when the first rename into it fails.
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(temp, path);
      break;
    } catch (err) {
      if (!isMissing(err) || attempt >= 10) throw err;
    }
    await mkdir(dir, { recursive: true });
  }
  await syncDirectory(dir);
}

/** Fsyncs a folder, so the renames and creations in it survive a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
