import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { registerTenants } from "../../src/cli/commands/tenants.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { TenantConflictError, TenantKey, TenantStore } from "../../src/tenants/index.js";
import { runCommand } from "../support/run-command.js";
import { useTempDir } from "../support/temp-dir.js";

const writerScript = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));
const built = fileURLToPath(new URL("../../dist/tenants/tenant-store.js", import.meta.url));
const ada = TenantKey.user("acme", "ada");

const cli = (...args: string[]) => runCommand(registerTenants, ["tenants", ...args]);

/** A cache left by a service killed with SIGKILL before it published anything (async, long interval). */
async function killedService(objectsRoot: string, cacheRoot: string, acks: number): Promise<void> {
  const child = spawn(process.execPath, [writerScript, objectsRoot, cacheRoot, "async", "600000", "acme"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      seen += (d.toString().match(/^ack /gm) ?? []).length;
      if (seen >= acks) resolve();
    });
    child.once("exit", (code) => reject(new Error(`writer exited early (${code})`)));
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

async function count(path: string): Promise<number> {
  const db = await openSqlite(path, { readonly: true });
  try {
    return ((await db.get<{ n: number }>("SELECT count(*) AS n FROM notes")) as { n: number }).n;
  } finally {
    await db.close();
  }
}

describe.runIf(existsSync(built))("storeroom tenants", () => {
  const root = useTempDir("storeroom-tenants-cli-");

  it("lists, publishes and evicts a killed service's cache; shows history, restores any point, lists conflicts", async () => {
    const objectsRoot = join(root, "objects");
    const cache = join(root, "cache");
    await killedService(objectsRoot, cache, 20);
    const common = ["--objects", objectsRoot, "--cache", cache, "--json"];

    // Nothing was published before the kill. ls and inspect only read: they report the cache
    // as holding unpublished writes and publish nothing.
    const unpublished = await cli("history", "acme/users/ada", "--objects", objectsRoot);
    expect(unpublished.code).toBe(1);
    expect(unpublished.stderr).toMatch(/not found: tenant acme\/users\/ada has no manifest/);
    const unpublishedJson = await cli("history", "acme/users/ada", "--objects", objectsRoot, "--json");
    expect(unpublishedJson.code).toBe(1);
    expect(JSON.parse(unpublishedJson.stdout)).toEqual({ key: "acme/users/ada", found: false });
    const rowsOf = (stdout: string) =>
      JSON.parse(stdout).tenants.map((t: { key: string; layout: string; cache: string }) => [t.key, t.layout, t.cache]);
    const ls = await cli("ls", ...common);
    expect(ls.code).toBe(0);
    expect(rowsOf(ls.stdout)).toEqual([
      ["acme/users/ada", null, "unpublished"],
      ["acme/users/bob", null, "unpublished"],
    ]);
    const before = await cli("inspect", "acme/users/ada", ...common);
    expect(JSON.parse(before.stdout)).toMatchObject({ key: "acme/users/ada", manifest: null, unpublished: true });
    expect((await cli("history", "acme/users/ada", "--objects", objectsRoot)).stderr).toMatch(/no manifest/);

    const checkpoint = await cli("checkpoint", ...common);
    expect(checkpoint.code).toBe(0);
    expect(JSON.parse(checkpoint.stdout).failed).toEqual([]);
    expect(rowsOf((await cli("ls", ...common)).stdout)).toEqual([
      ["acme/users/ada", "replicated", "cached"],
      ["acme/users/bob", "replicated", "cached"],
    ]);
    const inspect = await cli("inspect", "acme/users/ada", ...common);
    expect(JSON.parse(inspect.stdout)).toMatchObject({
      key: "acme/users/ada",
      manifestKey: "tenants/acme/users/ada/manifest.json",
      cache: { dirty: false, closed: true },
      unpublished: false,
    });

    const evict = await cli("evict", "acme/users/ada", ...common);
    expect(JSON.parse(evict.stdout)).toEqual({ evicted: ["acme/users/ada"], failed: [] });
    const after = await cli("ls", ...common);
    expect(
      JSON.parse(after.stdout).tenants.map((t: { key: string; layout: string; cache: string }) => [
        t.key,
        t.layout,
        t.cache,
      ]),
    ).toEqual([
      ["acme/users/ada", "replicated", null],
      ["acme/users/bob", "replicated", "cached"],
    ]);

    // History: a snapshot of the empty file, then one transaction per insert after CREATE TABLE.
    const history = JSON.parse((await cli("history", "acme/users/ada", "--objects", objectsRoot, "--json")).stdout);
    expect(history.snapshots[0].txid).toBe(0);
    const rows = history.txid - 1;
    expect(rows).toBeGreaterThanOrEqual(10);
    const at = 1 + Math.floor(rows / 2);
    const restored = await cli(
      "restore",
      "acme/users/ada",
      "--objects",
      objectsRoot,
      "--at",
      String(at),
      "--to",
      join(root, "mid.db"),
      "--json",
    );
    expect(JSON.parse(restored.stdout)).toMatchObject({ key: "acme/users/ada", txid: at });
    expect(await count(join(root, "mid.db"))).toBe(at - 1);
    const byTime = await cli(
      "restore",
      "acme/users/ada",
      "--objects",
      objectsRoot,
      "--at",
      new Date().toISOString(),
      "--to",
      join(root, "now.db"),
    );
    expect(byTime.stdout).toContain(`at transaction ${history.txid}`);
    expect(await count(join(root, "now.db"))).toBe(rows);
    expect(
      (await cli("restore", "acme/users/ada", "--objects", objectsRoot, "--at", "2", "--to", join(root, "now.db")))
        .code,
    ).toBe(2);
    expect((await cli("restore", "acme/users/ada", "--objects", objectsRoot, "--at", "2")).stderr).toMatch(
      /exactly one of/,
    );
    expect(
      (await cli("restore", "acme/users/ada", "--objects", objectsRoot, "--at", "yesterday", "--to", "x.db")).stderr,
    ).toMatch(/--at/);

    // As a new generation: the state at transaction 3 becomes current, one transaction after the last.
    const generation = JSON.parse(
      (await cli("restore", "acme/users/ada", "--objects", objectsRoot, "--at", "3", "--as-new-generation", "--json"))
        .stdout,
    );
    expect(generation).toMatchObject({ restoredTxid: 3, txid: history.txid + 1 });
    const objects = new FileObjectStore({ root: objectsRoot });
    const reader = await TenantStore.open({ objectStore: objects, cacheRoot: join(root, "reader") });
    expect(await (await reader.get(ada)).get("SELECT count(*) AS n FROM notes")).toEqual({ n: 2 });
    await reader.close();

    // Conflicts: two stores on one tenant, the loser's copy is listed and exported from its cache.
    const a = await TenantStore.open({ objectStore: objects, cacheRoot: join(root, "a") });
    const b = await TenantStore.open({ objectStore: objects, cacheRoot: join(root, "b") });
    const dbB = await b.get(ada);
    await (await a.get(ada)).run("INSERT INTO notes VALUES (1001, 'from a')");
    await dbB.run("INSERT INTO notes VALUES (1002, 'from b')");
    await a.checkpoint(ada);
    const lost = await b.checkpoint(ada).catch((e) => e);
    expect(lost).toBeInstanceOf(TenantConflictError);
    await b.close();
    await a.close();
    const conflicts = JSON.parse((await cli("conflicts", "--cache", join(root, "b"), "--json")).stdout).conflicts;
    expect(conflicts).toMatchObject([
      { id: lost.recordId, tenant: "acme/users/ada", reason: "fenced", unpublishedTransactions: 1 },
    ]);
    const exported = await cli(
      "conflicts",
      "restore",
      lost.recordId,
      "--cache",
      join(root, "b"),
      "--to",
      join(root, "lost.db"),
    );
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    const kept = await openSqlite(join(root, "lost.db"), { readonly: true });
    expect(await kept.get("SELECT body FROM notes WHERE id = 1002")).toEqual({ body: "from b" });
    await kept.close();
    expect(
      (
        await cli(
          "conflicts",
          "restore",
          "0000000000000-00000000",
          "--cache",
          join(root, "b"),
          "--to",
          join(root, "x.db"),
        )
      ).code,
    ).toBe(2);

    const bad = await cli("inspect", "../etc", ...common);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/org\/users\/user/);
    await objects.close();
  }, 60_000);

  it("ls, inspect and history read beside a running service, on its cache, without a scratch cache", async () => {
    const objectsRoot = join(root, "live-objects");
    const cache = join(root, "live-cache");
    // A live service: it holds the cache lock and keeps writing, publishing every 50 ms; wait
    // until both of its tenants were published once.
    const child = spawn(process.execPath, [writerScript, objectsRoot, cache, "async", "50", "acme"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const published = new Set<string>();
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          for (const m of d.toString().matchAll(/^round (\w+) /gm)) published.add(m[1] as string);
          if (published.has("ada") && published.has("bob")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`service exited early (${code})`)));
      });
      const ls = await cli("ls", "--objects", objectsRoot, "--cache", cache, "--json");
      expect([ls.code, ls.stderr]).toEqual([0, ""]);
      const rows = JSON.parse(ls.stdout).tenants as { key: string; layout: string; cache: string }[];
      expect(rows.map((r) => [r.key, r.layout])).toEqual([
        ["acme/users/ada", "replicated"],
        ["acme/users/bob", "replicated"],
      ]);
      for (const r of rows) expect(["cached", "unpublished"]).toContain(r.cache);
      const withoutCache = await cli("ls", "--objects", objectsRoot, "--json");
      expect(JSON.parse(withoutCache.stdout).tenants.map((r: { cache: string | null }) => r.cache)).toEqual([
        null,
        null,
      ]);
      const inspect = await cli("inspect", "acme/users/ada", "--objects", objectsRoot, "--cache", cache, "--json");
      expect(inspect.code).toBe(0);
      expect(JSON.parse(inspect.stdout)).toMatchObject({
        key: "acme/users/ada",
        manifestKey: "tenants/acme/users/ada/manifest.json",
        localPath: join(cache, "acme", "users", "ada.db"),
      });
      expect(JSON.parse(inspect.stdout).manifest).not.toBeNull();
      const history = await cli("history", "acme/users/ada", "--objects", objectsRoot, "--json");
      expect(history.code).toBe(0);
      expect(JSON.parse(history.stdout).txid).toBeGreaterThan(0);
      // A command that writes still refuses the live service's cache.
      const checkpoint = await cli("checkpoint", "--objects", objectsRoot, "--cache", cache);
      expect(checkpoint.code).toBe(2);
      expect(checkpoint.stderr).toMatch(/in use/);
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
  }, 60_000);
});
