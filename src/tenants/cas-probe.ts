import { randomBytes } from "node:crypto";
import { isStoreError } from "../errors.js";
import type { ObjectStore } from "../objects/index.js";

/**
 * Checks on a scratch key that the object store honours conditional writes: a second
 * `If-None-Match: *` create and an `If-Match` with a wrong etag must both be refused. Returns
 * what was ignored (empty when everything holds); other failures are thrown. The scratch key
 * is removed afterwards.
 */
export async function probeConditionalWrites(store: ObjectStore, writer: string): Promise<string[]> {
  const key = `tenants/.probe/${writer}-${randomBytes(4).toString("hex")}`;
  const ignored: string[] = [];
  try {
    await store.put(key, "1", { ifNoneMatch: "*" });
    if (!(await refused(() => store.put(key, "2", { ifNoneMatch: "*" })))) ignored.push("If-None-Match: *");
    if (!(await refused(() => store.put(key, "3", { ifMatch: "0123456789abcdef0123456789abcdef" })))) {
      ignored.push("If-Match");
    }
  } finally {
    await store.delete(key).catch(() => undefined);
  }
  return ignored;
}

async function refused(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return false;
  } catch (err) {
    if (isStoreError(err, "CONFLICT")) return true;
    throw err;
  }
}
