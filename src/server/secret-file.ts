import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError } from "../errors.js";

/**
 * Reads a secret kept in a file, or creates the file (mode 0600) with 32 random bytes as hex
 * when it does not exist. A file holding fewer than 32 bytes -> InvalidArgumentError.
 */
export async function readOrCreateSecret(path: string): Promise<string> {
  const existing = await readSecret(path);
  if (existing !== undefined) return existing;
  const secret = randomBytes(32).toString("hex");
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return readOrCreateSecret(path);
    throw err;
  }
  return secret;
}

/** The secret kept in a file, or `undefined` when the file does not exist. Fewer than 32 bytes -> InvalidArgumentError. */
export async function readSecret(path: string): Promise<string | undefined> {
  let secret: string;
  try {
    secret = (await readFile(path, "utf8")).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  if (Buffer.byteLength(secret) < 32) {
    throw new InvalidArgumentError(`${path} must hold at least 32 bytes`, { op: "server.secret" });
  }
  return secret;
}
