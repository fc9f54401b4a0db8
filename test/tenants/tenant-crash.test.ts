import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey, TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";

const ada = TenantKey.user("acme", "ada");
const bob = TenantKey.user("acme", "bob");
const cy = TenantKey.user("acme", "cy");
const child = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

/** Runs the child until it reports ready, then kills it with SIGKILL (no close, no flush). */
async function crashChild(objectsRoot: string, cacheRoot: string): Promise<void> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, objectsRoot, cacheRoot], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d;
  });
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      if (String(d).includes("ready")) resolve();
    });
    proc.on("exit", (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
  });
  const exited = new Promise((resolve) => proc.on("exit", (_code, signal) => resolve(signal)));
  proc.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
}

async function notes(store: TenantStore, key: TenantKey): Promise<string[]> {
  const db = await store.get(key);
  const tables = await db.all("SELECT name FROM sqlite_master WHERE name = 'notes'");
  if (tables.length === 0) return [];
  return (await db.all<{ body: string }>("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body);
}

function open(objects: FileObjectStore, cacheRoot: string): TenantStore {
  return new TenantStore({ objectStore: objects, cacheRoot, idleTtlMs: 0, checkpointIntervalMs: 0 });
}

describe("kill -9 with dirty tenants, then restart", () => {
  const root = useTempDir("storeroom-tenants-crash-");

  it("keeps checkpointed writes in object storage and recovers the rest from the same cache", async () => {
    const objectsRoot = join(root, "objects-1");
    const cacheRoot = join(root, "cache-1");
    await crashChild(objectsRoot, cacheRoot);
    const objects = new FileObjectStore({ root: objectsRoot });

    // What object storage alone holds: only what was checkpointed or evicted.
    const elsewhere = open(objects, join(root, "elsewhere-1"));
    expect(await notes(elsewhere, ada)).toEqual(["a1"]);
    expect(await notes(elsewhere, bob)).toEqual([]);
    expect(await notes(elsewhere, cy)).toEqual(["c1"]);
    await elsewhere.close();

    // Restart on the crashed cache: the local files (and their WALs) are adopted, not overwritten.
    const restarted = open(objects, cacheRoot);
    expect(await notes(restarted, ada)).toEqual(["a1", "a2"]);
    expect(await notes(restarted, bob)).toEqual(["b1"]);
    expect(await notes(restarted, cy)).toEqual(["c1"]);
    expect((await restarted.inspect(ada)).dirtyChanges).toBeGreaterThan(0);
    await restarted.close(); // uploads the recovered writes

    const later = open(objects, join(root, "later-1"));
    expect(await notes(later, ada)).toEqual(["a1", "a2"]);
    expect(await notes(later, bob)).toEqual(["b1"]);
    await later.close();
    await objects.close();
  });

  it("keeps a crashed copy aside when another process wrote the tenant meanwhile", async () => {
    const objectsRoot = join(root, "objects-2");
    const cacheRoot = join(root, "cache-2");
    await crashChild(objectsRoot, cacheRoot);
    const objects = new FileObjectStore({ root: objectsRoot });
    const other = open(objects, join(root, "other-2"));
    await (await other.get(ada)).run("INSERT INTO notes VALUES ('other')");
    await other.close();

    const restarted = open(objects, cacheRoot);
    const err = await restarted.get(ada).catch((e) => e);
    expect(err).toBeInstanceOf(TenantConflictError);
    const copy = await openSqlite(err.keptAt, { readonly: true });
    expect((await copy.all<{ body: string }>("SELECT body FROM notes ORDER BY rowid")).map((r) => r.body)).toEqual([
      "a1",
      "a2",
    ]);
    await copy.close();
    expect(await notes(restarted, ada)).toEqual(["a1", "other"]); // the next get hydrates the winner
    await restarted.close();
    await objects.close();
  });
});
