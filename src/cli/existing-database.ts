import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { InvalidArgumentError, NotFoundError } from "../errors.js";

const SQLITE_HEADER = "SQLite format 3\0";

function isServerDatabase(path: string): boolean {
  return path === ":memory:" || /^postgres(ql)?:\/\//.test(path);
}

/**
 * Throws {@link InvalidArgumentError} naming `flag` and `path` when `path` exists but is a
 * directory or a file that is not a SQLite database, so the operator reads which path is wrong
 * rather than the driver's "unable to open database file". A missing path passes (commands that
 * write create it); an empty file is an empty database. PostgreSQL URLs and `:memory:` pass.
 */
export function checkDatabaseFile(path: string, op: string, flag = "--db"): void {
  if (isServerDatabase(path) || !existsSync(path)) return;
  const stat = statSync(path);
  if (stat.isDirectory())
    throw new InvalidArgumentError(`${flag} ${path} is a directory, not a SQLite database file`, { op });
  if (stat.size === 0) return;
  const header = Buffer.alloc(SQLITE_HEADER.length);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new InvalidArgumentError(`${flag} ${path} cannot be read: ${(err as Error).message}`, { op, cause: err });
  }
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (header.toString("latin1") !== SQLITE_HEADER)
    throw new InvalidArgumentError(`${flag} ${path} is not a SQLite database`, { op });
}

/**
 * Throws {@link NotFoundError} when `path` names no file, so commands that only read (or
 * delete) never leave an empty database behind a mistyped path, then checks it like
 * {@link checkDatabaseFile}. PostgreSQL URLs and `:memory:` pass.
 */
export function requireExistingDatabase(path: string, op: string, flag = "--db"): void {
  if (isServerDatabase(path)) return;
  if (!existsSync(path))
    throw new NotFoundError(`no database at ${path} (only commands that write create one)`, { op });
  checkDatabaseFile(path, op, flag);
}
