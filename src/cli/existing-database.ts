import { existsSync } from "node:fs";
import { NotFoundError } from "../errors.js";

/**
 * Throws {@link NotFoundError} when `path` names no file, so commands that only read (or
 * delete) never leave an empty database behind a mistyped path. PostgreSQL URLs and
 * `:memory:` pass.
 */
export function requireExistingDatabase(path: string, op: string): void {
  if (path === ":memory:" || /^postgres(ql)?:\/\//.test(path)) return;
  if (!existsSync(path))
    throw new NotFoundError(`no database at ${path} (only commands that write create one)`, { op });
}
