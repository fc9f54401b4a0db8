import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { listConflicts, TenantKey, TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";

const child = fileURLToPath(new URL("./fixtures/stop-after-upload.mjs", import.meta.url));
const built = fileURLToPath(new URL("../../dist/tenants/tenant-store.js", import.meta.url));
const ada = TenantKey.user("acme", "ada");
const ACKS = 3;

/** Runs the child until the PUT of an object matching `point` was stored, then kills it with SIGKILL. */
async function killAfterUpload(
  objectsRoot: string,
  cacheRoot: string,
  durability: string,
  point: string,
): Promise<{ acked: number[]; stopped: string }> {
  const proc = spawn(process.execPath, [child, objectsRoot, cacheRoot, durability, point, String(ACKS)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acked: number[] = [];
  let stderr = "";
  proc.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once("exit", (_code, signal) => resolve(signal)));
  const stopped = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const [kind, value] = buffer.slice(0, nl).split(" ");
        buffer = buffer.slice(nl + 1);
        if (kind === "ack") acked.push(Number(value));
        else if (kind === "stopped") resolve(value as string);
      }
    });
    void exited.then(() => reject(new Error(`child exited before stopping at ${point}: ${stderr}`)));
  });
  proc.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  return { acked, stopped };
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
