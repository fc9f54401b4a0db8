import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, NotFoundError } from "../errors.js";

/**
 * Throws {@link NotFoundError} when `path` does not exist and {@link InvalidArgumentError} when
 * it is not a directory, naming `flag`: a mistyped path is an error, never an empty answer
 * or a directory created on the spot.
 */
export function requireExistingDirectory(path: string, flag: string, op: string): void {
  if (!existsSync(path)) throw new NotFoundError(`${flag}: no directory at ${path}`, { op });
  if (!statSync(path).isDirectory()) throw new InvalidArgumentError(`${flag} ${path} is not a directory`, { op });
}

/**
 * {@link requireExistingDirectory} for an object store URL that names a local directory (a
 * path or `file://...`); other schemes (`s3:`, `memory:`) pass.
 */
export function requireExistingObjectStore(url: string, op: string, flag = "--objects"): void {
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url)?.[1]?.toLowerCase();
  let path: string | undefined = url;
  if (scheme === "file") {
    try {
      path = fileURLToPath(new URL(new URL(url).pathname, "file://"));
    } catch {
      path = undefined; // openObjectStore words a malformed URL
    }
  } else if (scheme !== undefined) path = undefined;
  if (path !== undefined) requireExistingDirectory(path, flag, op);
}
