import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { listConflicts, TenantKey, TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";

const child = fileURLToPath(new URL("./fixtures/stop-after-upload.mjs", import.meta.url));
const firstWrites = fileURLToPath(new URL("./fixtures/first-writes.mjs", import.meta.url));
const built = fileURLToPath(new URL("../../dist/tenants/tenant-store.js", import.meta.url));
const ada = TenantKey.user("acme", "ada");
const ACKS = 3;

/**
 * Runs the child `script` with `args`, collecting the ids of its "ack <id>" lines, until it
 * prints a line "<until> <value>"; then kills it with SIGKILL. Returns the acks and that value.
 */
async function killAt(script: string, args: string[], until: string): Promise<{ acked: number[]; value: string }> {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const acked: number[] = [];
  let stderr = "";
  proc.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once("exit", (_code, signal) => resolve(signal)));
  const value = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const [kind, value] = buffer.slice(0, nl).split(" ");
        buffer = buffer.slice(nl + 1);
        if (kind === "ack") acked.push(Number(value));
        else if (kind === until) resolve(value ?? "");
      }
    });
    void exited.then(() => reject(new Error(`child exited before printing "${until}": ${stderr}`)));
  });
  proc.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  return { acked, value };
}

/** Runs the upload child until the PUT of an object matching `point` was stored, then kills it with SIGKILL. */
async function killAfterUpload(
  objectsRoot: string,
  cacheRoot: string,
  durability: string,
  point: string,
): Promise<{ acked: number[]; stopped: string }> {
  const { acked, value } = await killAt(child, [objectsRoot, cacheRoot, durability, point, String(ACKS)], "stopped");
  return { acked, stopped: value };
}

async function ids(store: TenantStore): Promise<number[]> {
  return (await (await store.get(ada)).all<{ id: number }>("SELECT id FROM notes ORDER BY id")).map((r) => r.id);
}

describe.runIf(existsSync(built))("kill -9 right after an object landed, before the writer took note", () => {
  const root = useTempDir("storeroom-tenants-crash-points-");

  for (const durability of ["sync", "async"]) {
    for (const point of ["/segments/", "/manifest.json", "/snapshots/"]) {
      it(`${durability}, killed after a ${point.replaceAll("/", "")} PUT: the restart on the same cache adopts its own upload, loses nothing and records no conflict`, async () => {
        const dir = join(root, `${durability}-${point.replaceAll("/", "")}`);
        const objectsRoot = join(dir, "objects");
        const cacheRoot = join(dir, "cache");
        const { acked, stopped } = await killAfterUpload(objectsRoot, cacheRoot, durability, point);
        expect(stopped).toContain(point);
        const objects = new FileObjectStore({ root: objectsRoot });
        // A new machine right after the kill: sync lost nothing acknowledged; async at most the write in flight.
        const elsewhere = await TenantStore.open({ objectStore: objects, cacheRoot: join(dir, "elsewhere") });
        const published = await ids(elsewhere);
        await elsewhere.close();
        const mustBePublished = durability === "sync" ? acked : acked.filter((id) => id < ACKS);
        expect(mustBePublished.filter((id) => !published.includes(id))).toEqual([]);
        // The same machine restarted.
        const restarted = await TenantStore.open({ objectStore: objects, cacheRoot });
        await restarted.recovered();
        const local = await ids(restarted);
        expect(acked.filter((id) => !local.includes(id))).toEqual([]);
        expect(restarted.stats.replication.conflicts).toBe(0);
        await restarted.close();
        expect(await listConflicts(cacheRoot)).toEqual([]);
        // What it recovered is published.
        const check = await TenantStore.open({ objectStore: objects, cacheRoot: join(dir, "check") });
        expect(await ids(check)).toEqual(local);
        await check.close();
        await objects.close();
      }, 30_000);
    }
  }
});

/** Ids in the tenant's notes table; none when the table does not exist (nothing of it was published). */
async function publishedIds(store: TenantStore): Promise<number[]> {
  const db = await store.get(ada);
  const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'notes'");
  return tables.length === 0 ? [] : ids(store);
}

describe.runIf(existsSync(built))("kill -9 after a new tenant's first writes could not be recorded as content", () => {
  const root = useTempDir("storeroom-tenants-first-writes-");

  for (const durability of ["sync", "async"]) {
    it(`${durability}: no write is acknowledged before the cache records that the tenant holds content, so no acknowledged write is lost`, async () => {
      const dir = join(root, durability);
      const objectsRoot = join(dir, "objects");
      const cacheRoot = join(dir, "cache");
      const { acked, value } = await killAt(firstWrites, [objectsRoot, cacheRoot, durability], "committed");
      // Both writes committed locally, and neither could be acknowledged.
      expect(value).toBe("2");
      expect(acked).toEqual([]);
      rmSync(`${ada.localPath(cacheRoot)}.replica`, { recursive: true });
      const objects = new FileObjectStore({ root: objectsRoot });
      const restarted = await TenantStore.open({ objectStore: objects, cacheRoot });
      await restarted.recovered();
      const local = await publishedIds(restarted);
      await restarted.close();
      const check = await TenantStore.open({ objectStore: objects, cacheRoot: join(dir, "check") });
      const published = await publishedIds(check);
      await check.close();
      await objects.close();
      expect(acked.filter((id) => !published.includes(id) || !local.includes(id))).toEqual([]);
    }, 30_000);
  }
});
