import { createHash } from "node:crypto";
import { readlinkSync } from "node:fs";
import { lstat, readFile, readlink, symlink, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BusyError } from "../errors.js";
import { Mutex } from "../internal/mutex.js";

interface Entry {
  readonly mutex: Mutex;
  users: number;
}

/** In-process locks shared by every FileObjectStore on the same real root path. */
const processLocks = new Map<string, Entry>();

/**
 * Who holds a lock file: pid, host name and PID namespace. A lock whose owner ran in this
 * host's PID namespace and no longer runs (a kill -9) is broken at once instead of after
 * `staleLockMs`; a pid seen from another machine or container proves nothing and waits.
 */
const owner = `${process.pid} ${hostname()} ${pidNamespace()}`;

function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return "";
  }
}

/** Options of {@link withKeyLock}. */
export interface KeyLockOptions {
  /** Real path of the store root (the in-process lock namespace). */
  readonly root: string;
  /** Directory of the cross-process lock files. */
  readonly lockDir: string;
  /** A lock file older than this is considered left by a crashed process and broken. */
  readonly staleLockMs: number;
  /** Give up with BusyError after waiting this long for another process. */
  readonly waitMs: number;
}

/**
 * Runs `fn` holding the lock of one key: first a FIFO mutex shared by all stores of this
 * process on the same root, then a lock file that other processes on the same root respect.
 * Why both: the mutex keeps same-process callers fair and cheap, the file covers other
 * processes. The lock file is a symbolic link whose target is the owner: `symlink` creates it
 * with its owner in one atomic call (it fails if the lock exists), so taking and giving back
 * an uncontended lock are one file-system call each, and a lock never exists without its
 * owner, even after a kill. Its own modification time (`lstat`) is when it was taken.
 */
export async function withKeyLock<T>(
  options: KeyLockOptions,
  key: string,
  op: string,
  fn: () => Promise<T>,
): Promise<T> {
  const id = `${options.root}\0${key}`;
  let entry = processLocks.get(id);
  if (!entry) {
    entry = { mutex: new Mutex(), users: 0 };
    processLocks.set(id, entry);
  }
  entry.users += 1;
  try {
    return await entry.mutex.run(async () => {
      const lockFile = join(options.lockDir, `${createHash("sha256").update(key).digest("hex")}.lock`);
      await acquireFile(lockFile, options, op);
      try {
        return await fn();
      } finally {
        await unlink(lockFile).catch(() => undefined);
      }
    });
  } finally {
    entry.users -= 1;
    if (entry.users === 0) processLocks.delete(id);
  }
}

async function acquireFile(lockFile: string, options: KeyLockOptions, op: string): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await symlink(owner, lockFile);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const held = await readLock(lockFile);
    if (held && (Date.now() - held.mtimeMs > options.staleLockMs || ownerIsGone(held.owner))) {
      // Only the lock file that was examined: another waiter may already have replaced it.
      const now = await lstat(lockFile).catch(() => null);
      if (now?.ino === held.ino) await unlink(lockFile).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw new BusyError(`object key is locked by another process (${lockFile})`, { op });
    await sleep(Math.min(50, 1 + attempt));
  }
}

/** Owner and age of a lock: a link's target, or the content of a regular file (a lock taken by an earlier version). */
async function readLock(lockFile: string): Promise<{ owner: string; mtimeMs: number; ino: number } | null> {
  try {
    const info = await lstat(lockFile);
    const lockOwner = info.isSymbolicLink() ? await readlink(lockFile) : await readFile(lockFile, "utf8");
    return { owner: lockOwner, mtimeMs: info.mtimeMs, ino: info.ino };
  } catch {
    return null;
  }
}

function ownerIsGone(lockOwner: string): boolean {
  const [pid, host, namespace] = lockOwner.split(" ");
  const [, ourHost, ourNamespace] = owner.split(" ");
  if (!namespace || namespace !== ourNamespace || host !== ourHost) return false;
  const id = Number(pid);
  if (!Number.isSafeInteger(id) || id <= 0 || id === process.pid) return false;
  try {
    process.kill(id, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
