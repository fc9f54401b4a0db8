import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BusyError } from "../errors.js";

/** Cache roots held by stores of this process. */
const held = new Set<string>();

/**
 * Takes `<cacheRoot>/.lock` for this process: two stores on one cache would adopt and
 * overwrite each other's files. A lock left by a process that no longer runs (a crash) is
 * taken over. Throws {@link BusyError} when a live store holds it.
 */
export function lockCache(cacheRoot: string): () => void {
  const path = join(cacheRoot, ".lock");
  if (held.has(cacheRoot)) throw busy(cacheRoot, process.pid);
  try {
    writeFileSync(path, String(process.pid), { flag: "wx", mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const owner = Number.parseInt(readFileSync(path, "utf8"), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) throw busy(cacheRoot, owner);
    writeFileSync(path, String(process.pid), { mode: 0o600 });
  }
  held.add(cacheRoot);
  return () => {
    held.delete(cacheRoot);
    rmSync(path, { force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function busy(cacheRoot: string, pid: number): BusyError {
  return new BusyError(`tenant cache ${cacheRoot} is in use by process ${pid}`, { op: "tenants.open" });
}
