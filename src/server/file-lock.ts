import { open, readFile, unlink } from "node:fs/promises";
import { BusyError } from "../errors.js";

/** How long {@link withFileLock} waits for another process before giving up. */
const waitMs = 10_000;

/**
 * Runs `fn` while holding `<path>.lock`, a file created exclusively and holding our pid, so
 * several processes on one host (a running server and `storeroom tokens`) never interleave
 * read-modify-write cycles on `path`. A lock left by a process that no longer exists is taken
 * over; waiting longer than 10 s -> BusyError.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + waitMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 25)) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const stale = await staleHolder(lockPath);
      if (stale !== undefined) {
        // Re-read right before removing, so a lock a live process took meanwhile is left alone.
        if ((await staleHolder(lockPath)) === stale) await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new BusyError(`${lockPath} is held by another process`, { op: "server.lock" });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

/** The pid in the lock file when that process no longer exists, else undefined. */
async function staleHolder(lockPath: string): Promise<number | undefined> {
  const pid = Number((await readFile(lockPath, "utf8").catch(() => "")).trim());
  // An empty file is a holder that has not written its pid yet: wait for it.
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH" ? pid : undefined;
  }
}
