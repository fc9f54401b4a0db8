import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { ConflictError } from "../../src/errors.js";
import type { ObjectStore } from "../../src/objects/object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey, type TenantStore } from "../../src/tenants/index.js";

export const ada = TenantKey.user("acme", "ada");

export async function notes(db: { all<T>(sql: string): Promise<T[]> }): Promise<string[]> {
  return (await db.all<{ body: string }>("SELECT body FROM notes ORDER BY body")).map((r) => r.body);
}

/** The rows of a SQLite file (a conflict record's copy, an exported one). */
export async function fileNotes(path: string): Promise<string[]> {
  const db = await openSqlite(path, { readonly: true });
  try {
    return await notes(db);
  } finally {
    await db.close();
  }
}

/**
 * Two stores on one object store write the same tenant from the same starting point and
 * publish at once: exactly one wins, the other is fenced, keeps its write as a conflict record,
 * hydrates the winner's version and carries on from it.
 */
export async function race(
  a: TenantStore,
  b: TenantStore,
  objects: ObjectStore,
  seeded: boolean,
  key: TenantKey = ada,
): Promise<void> {
  if (seeded) {
    await a.withTenant(key, (db) => db.run("CREATE TABLE notes (body TEXT)"));
    await a.evict(key);
  }
  const dbA = await a.get(key);
  const dbB = await b.get(key);
  if (!seeded) {
    await dbA.run("CREATE TABLE notes (body TEXT)");
    await dbB.run("CREATE TABLE notes (body TEXT)");
  }
  await dbA.run("INSERT INTO notes VALUES ('from a')");
  await dbB.run("INSERT INTO notes VALUES ('from b')");
  const results = await Promise.allSettled([a.checkpoint(key), b.checkpoint(key)]);
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
  expect(await notes(await winner.get(key))).toEqual([winnerNote]);
  await loser.evict(key).catch((err) => expect(err).toBe(conflict));
  expect(existsSync(conflict.keptAt)).toBe(true);
  const record = (await loser.conflicts()).find((r) => r.id === conflict.recordId);
  expect(record).toMatchObject({ tenant: key.toString(), reason: "fenced", unpublishedTransactions: seeded ? 1 : 2 });
  const exported = join(loser.cacheRoot, "..", `exported-${conflict.recordId}.db`);
  await loser.exportConflict(conflict.recordId, exported);
  expect(await fileNotes(exported)).toEqual([loserNote]);
  expect(loser.stats.replication.conflicts).toBeGreaterThanOrEqual(1);
  // The loser hydrated the winner's version and carries on from it.
  const fresh = await loser.get(key);
  expect(await notes(fresh)).toContain(winnerNote);
  await fresh.run("INSERT INTO notes VALUES ('merged')");
  expect((await loser.checkpoint(key)).uploaded).toBe(true);
  expect((await objects.head(`${key.prefix()}manifest.json`))?.etag).toBe((await loser.inspect(key)).manifest?.etag);
}
