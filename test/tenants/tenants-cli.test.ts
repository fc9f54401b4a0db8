import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", main, "tenants", ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("storeroom tenants", () => {
  const root = useTempDir("storeroom-tenants-cli-");

  it("lists, inspects, checkpoints and evicts a cache left with unflushed writes", async () => {
    const objectsRoot = join(root, "objects");
    const cache = join(root, "cache");
    const objects = new FileObjectStore({ root: objectsRoot });
    const store = new TenantStore({ objectStore: objects, cacheRoot: cache, idleTtlMs: 0, checkpointIntervalMs: 0 });
    await store.withTenant(TenantKey.user("acme", "ada"), (db) => db.run("CREATE TABLE t (x)"));
    await store.checkpoint(TenantKey.user("acme", "ada"));
    await store.withTenant(TenantKey.user("acme", "ada"), (db) => db.run("INSERT INTO t VALUES (1)"));
    await store.withTenant(TenantKey.org("acme"), (db) => db.run("CREATE TABLE t (x)"));
    // Simulate a service that stopped without flushing: release the cache without close().
    const { rmSync } = await import("node:fs");
    rmSync(join(cache, ".lock"));
    const common = ["--objects", objectsRoot, "--cache", cache, "--json"];

    const ls = await cli("ls", ...common);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout).tenants.map((t: { key: string; cache: string }) => [t.key, t.cache])).toEqual([
      ["acme/org", "unflushed"],
      ["acme/users/ada", "unflushed"],
    ]);

    const inspect = await cli("inspect", "acme/users/ada", ...common);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ key: "acme/users/ada", cache: { status: "unflushed" } });

    const checkpoint = await cli("checkpoint", ...common);
    expect(checkpoint.code).toBe(0);
    const out = JSON.parse(checkpoint.stdout);
    expect(out.failed).toEqual([]);
    expect(out.checkpointed.map((c: { key: string; uploaded: boolean }) => [c.key, c.uploaded])).toEqual([
      ["acme/org", true],
      ["acme/users/ada", true],
    ]);

    const evict = await cli("evict", "acme/users/ada", ...common);
    expect(JSON.parse(evict.stdout)).toEqual({ evicted: ["acme/users/ada"], failed: [] });
    const after = await cli("ls", "--org", "acme", ...common);
    expect(JSON.parse(after.stdout).tenants.map((t: { key: string; cache: string }) => [t.key, t.cache])).toEqual([
      ["acme/org", "clean"],
      ["acme/users/ada", null],
    ]);

    const reader = new TenantStore({ objectStore: objects, cacheRoot: join(root, "reader") });
    expect(await (await reader.get(TenantKey.user("acme", "ada"))).all("SELECT x FROM t")).toEqual([{ x: 1 }]);
    await reader.close();

    const bad = await cli("inspect", "../etc", ...common);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/org\/users\/user/);
    await objects.close();
  }, 60_000);
});
