import { createHash } from "node:crypto";
import { open, stat, unlink } from "node:fs/promises";
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
 * process on the same root, then an `O_EXCL` lock file that other processes on the same root
 * respect. Why both: the mutex keeps same-process callers fair and cheap, the file covers
 * other processes.
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
      const handle = await open(lockFile, "wx");
      await handle.writeFile(String(process.pid)).finally(() => handle.close());
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const info = await stat(lockFile).catch(() => null);
    if (info && Date.now() - info.mtimeMs > options.staleLockMs) {
      await unlink(lockFile).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw new BusyError(`object key is locked by another process (${lockFile})`, { op });
    await sleep(Math.min(50, 1 + attempt));
  }
}
