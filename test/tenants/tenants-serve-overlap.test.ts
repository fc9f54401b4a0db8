import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { exportConflict, listConflicts } from "../../src/tenants/index.js";
import { startServe } from "../e2e/serve-process.js";
import { useTempDir } from "../support/temp-dir.js";

const token = "acme-ada-token-0123456789";

function writeTokens(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens: [{ token, orgId: "acme", userId: "ada" }] }));
}

/** PUTs `key`, retrying after 409 (the server lost the tenant and hydrates the winner next); true once acknowledged. */
async function put(url: string, key: string, value: string): Promise<{ conflicts: number }> {
  let conflicts = 0;
  for (;;) {
    const res = await fetch(`${url}/v1/state/notes/${key}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
      body: value,
    });
    if (res.status === 204) return { conflicts };
    expect(res.status).toBe(409);
    conflicts += 1;
  }
}

/** Keys of the `notes` group in every conflict record a server kept in its data directory. */
async function recordedKeys(dataDir: string, exportDir: string): Promise<Set<string>> {
  const cacheRoot = join(dataDir, "cache");
  const keys = new Set<string>();
  for (const record of await listConflicts(cacheRoot)) {
    const to = join(exportDir, `${record.id}.db`);
    await exportConflict(cacheRoot, record.id, to);
    const db = await openSqlite(to, { readonly: true });
    for (const row of await db.all<{ k: string }>("SELECT entry_key AS k FROM entries WHERE group_name = 'notes'"))
      keys.add(row.k);
    await db.close();
  }
  return keys;
}

describe("two `storeroom serve` processes write one tenant through one object store", () => {
  const root = useTempDir("storeroom-serve-overlap-");

  it("sync: no acknowledged write is lost and the losing side answers 409", async () => {
    const objects = `file://${join(root, "objects")}`;
    const [dataA, dataB, dataC] = ["a", "b", "c"].map((d) => join(root, d)) as [string, string, string];
    for (const dir of [dataA, dataB, dataC]) writeTokens(dir);
    const a = await startServe(["--data", dataA, "--objects", objects, "--durability", "sync"]);
    const b = await startServe(["--data", dataB, "--objects", objects, "--durability", "sync"]);
    const acked: string[] = [];
    let conflicts = 0;
    await Promise.all(
      [a.url, b.url, a.url, b.url].map(async (url, w) => {
        for (let i = 0; i < 8; i++) {
          conflicts += (await put(url, `w${w}-${i}`, `v${w}-${i}`)).conflicts;
          acked.push(`w${w}-${i}`);
        }
      }),
    );
    expect((await a.stop()).code).toBe(0);
    expect((await b.stop()).code).toBe(0);
    const c = await startServe(["--data", dataC, "--objects", objects]);
    const missing: string[] = [];
    for (const key of acked) {
      const res = await fetch(`${c.url}/v1/state/notes/${key}`, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) missing.push(key);
    }
    await c.stop();
    console.log(`two serve processes: ${acked.length} acknowledged, ${missing.length} lost, ${conflicts} answered 409`);
    expect(acked).toHaveLength(32);
    expect(missing).toEqual([]);
    expect(conflicts).toBeGreaterThan(0);
  }, 60_000);

  it("async: every acknowledged write the tenant lost is in a conflict record of the server that lost it", async () => {
    const objects = `file://${join(root, "async-objects")}`;
    const [dataA, dataB, dataC] = ["async-a", "async-b", "async-c"].map((d) => join(root, d)) as [
      string,
      string,
      string,
    ];
    for (const dir of [dataA, dataB, dataC]) writeTokens(dir);
    const a = await startServe(["--data", dataA, "--objects", objects, "--durability", "async"]);
    const b = await startServe(["--data", dataB, "--objects", objects, "--durability", "async"]);
    const acked: string[] = [];
    // Both sides keep writing across several publication intervals (1 s), so both publish.
    const until = Date.now() + 2500;
    await Promise.all(
      [a.url, b.url, a.url, b.url].map(async (url, w) => {
        for (let i = 0; Date.now() < until || i < 8; i++) {
          await put(url, `w${w}-${i}`, `v${w}-${i}`);
          acked.push(`w${w}-${i}`);
        }
      }),
    );
    await a.stop();
    await b.stop();
    const c = await startServe(["--data", dataC, "--objects", objects]);
    const lost: string[] = [];
    for (const key of acked) {
      const res = await fetch(`${c.url}/v1/state/notes/${key}`, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) lost.push(key);
    }
    await c.stop();
    const recorded = new Set([...(await recordedKeys(dataA, root)), ...(await recordedKeys(dataB, root))]);
    const records =
      (await listConflicts(join(dataA, "cache"))).length + (await listConflicts(join(dataB, "cache"))).length;
    console.log(
      `two async serve processes: ${acked.length} acknowledged, ${lost.length} lost, all in ${records} conflict record(s)`,
    );
    expect(acked.length).toBeGreaterThanOrEqual(32);
    expect(lost.filter((key) => !recorded.has(key))).toEqual([]);
  }, 60_000);
});
