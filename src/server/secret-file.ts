import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError } from "../errors.js";

/**
 * Reads a secret kept in a file, or creates the file (mode 0600) with 32 random bytes as hex
 * when it does not exist. A file holding fewer than 32 bytes -> InvalidArgumentError.
 */
export async function readOrCreateSecret(path: string): Promise<string> {
  try {
    const secret = (await readFile(path, "utf8")).trim();
    if (Buffer.byteLength(secret) < 32)
      throw new InvalidArgumentError(`${path} must hold at least 32 bytes`, { op: "server.secret" });
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
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
