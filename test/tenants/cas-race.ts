import { existsSync } from "node:fs";
import { expect } from "vitest";
import { ConflictError } from "../../src/errors.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey, type TenantStore } from "../../src/tenants/index.js";
import type { FaultyObjectStore } from "../support/faulty-object-store.js";

export const ada = TenantKey.user("acme", "ada");

export async function notes(db: { all<T>(sql: string): Promise<T[]> }): Promise<string[]> {
  return (await db.all<{ body: string }>("SELECT body FROM notes ORDER BY body")).map((r) => r.body);
}

export async function keptNotes(path: string): Promise<string[]> {
  const db = await openSqlite(path, { readonly: true });
  try {
    return await notes(db);
  } finally {
    await db.close();
  }
}

/** Two stores on one object store write the same tenant; both checkpoint at once. */
export async function race(
  a: TenantStore,
  b: TenantStore,
  objects: ObjectStore,
  seeded: boolean,
  ada: TenantKey = TenantKey.user("acme", "ada"),
): Promise<void> {
  if (seeded) {
    await a.withTenant(ada, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.evict(ada);
  }
  const dbA = await a.get(ada);
  const dbB = await b.get(ada);
  if (!seeded) {
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await dbB.run("CREATE TABLE notes (body TEXT)");
  }
  await dbA.run("INSERT INTO notes VALUES ('from a')");
  await dbB.run("INSERT INTO notes VALUES ('from b')");
  const results = await Promise.allSettled([a.checkpoint(ada), b.checkpoint(ada)]);
  const won = results.filter((r) => r.status === "fulfilled");
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  expect(won).toHaveLength(1);
  expect(lost).toHaveLength(1);
  const conflict = lost[0]?.reason as TenantConflictError;
  expect(conflict).toBeInstanceOf(TenantConflictError);
  expect(conflict).toBeInstanceOf(ConflictError);
  const [winner, loser] = results[0]?.status === "fulfilled" ? [a, b] : [b, a];
  const winnerNote = winner === a ? "from a" : "from b";
  const loserNote = winner === a ? "from b" : "from a";
  // The winner's write is in object storage; the loser's is in the copy it kept aside.
  expect(await notes(await winner.get(ada))).toEqual([winnerNote]);
  await loser.evict(ada).catch((err) => expect(err).toBe(conflict)); // waits for the set-aside
  expect(existsSync(conflict.keptAt)).toBe(true);
  expect(await keptNotes(conflict.keptAt)).toEqual([loserNote]);
  // The loser can re-hydrate the winner's version and carry on from it.
  const fresh = await loser.get(ada);
  expect(await notes(fresh)).toEqual([winnerNote]);
  await fresh.run("INSERT INTO notes VALUES ('merged')");
  expect((await loser.checkpoint(ada)).uploaded).toBe(true);
  expect((await objects.head(ada.objectKey()))?.etag).toBe((await loser.inspect(ada)).etag);
}

/**
 * `a` writes the tenant (a conditional checkpoint of its own) after `b`'s multipart checkpoint
 * has uploaded its parts, right before `b` completes it: `b` must lose with a
 * {@link TenantConflictError} and keep its copy aside. `b`'s object store is `paused`, a
 * FaultyObjectStore over the one `a` and `reader` use.
 */
export async function writeIntoMultipartWindow(
  a: TenantStore,
  b: TenantStore,
  paused: FaultyObjectStore,
  reader: TenantStore,
  key: TenantKey = TenantKey.user("acme", "ada"),
): Promise<void> {
  await a.withTenant(key, async (db) => {
    await db.run("CREATE TABLE notes (body TEXT)");
    await db.run("CREATE TABLE filler (body TEXT)");
    await db.transaction(async (tx) => {
      for (let i = 0; i < 1000; i++) await tx.run("INSERT INTO filler VALUES (hex(randomblob(100)))");
    });
  });
  await a.evict(key);
  const dbA = await a.get(key);
  const dbB = await b.get(key);
  await dbA.run("INSERT INTO notes VALUES ('from a')");
  await dbB.run("INSERT INTO notes VALUES ('from b')");
  // A writes (its own conditional checkpoint) after B's parts are up, right before B completes.
  let intruded = false;
  paused.beforeCall = async (method) => {
    if (method !== "completeMultipart" || intruded) return;
    intruded = true;
    expect((await a.checkpoint(key)).uploaded).toBe(true);
  };
  const lost = await b.checkpoint(key).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(intruded).toBe(true);
  expect(paused.calls.filter((c) => c.method === "putPart").length).toBeGreaterThan(1);
  expect(lost).toBeInstanceOf(TenantConflictError);
  expect(lost).toBeInstanceOf(ConflictError);
  const conflict = lost as TenantConflictError;
  expect(paused.calls.map((c) => c.method)).toContain("abortMultipart");
  // A's write is in object storage; B's is in the copy it kept aside.
  expect((await paused.inner.head(key.objectKey()))?.etag).toBe((await a.inspect(key)).etag);
  expect(await notes(await reader.get(key))).toEqual(["from a"]);
  await b.evict(key).catch((err) => expect(err).toBe(conflict));
  expect(await keptNotes(conflict.keptAt)).toEqual(["from b"]);
}
