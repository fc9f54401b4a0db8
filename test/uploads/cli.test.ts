import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/program.js";
import { ManualClock } from "../../src/clock.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { useTempDir } from "../support/temp-dir.js";
import { newClaim } from "./fixtures.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Runs the real binary entry point in a child process (slow: loads every command). */
const spawnCli = async (args: string[]) => {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", MAIN, "uploads", ...args]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

/** Runs the command tree in this process, capturing stdout and the exit code. */
const run = async (args: string[]) => {
  let stdout = "";
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(["node", "storeroom", "uploads", ...args]);
    return { code: Number(process.exitCode ?? 0), stdout };
  } catch (err) {
    return { code: 2, stdout, error: err };
  } finally {
    process.stdout.write = write;
    process.exitCode = before;
  }
};

describe("storeroom uploads sweep|drain|reconcile", () => {
  const dir = useTempDir("storeroom-uploads-cli-");

  it("sweeps, drains and reconciles a SQLite control database over a file object store", {
    timeout: 60_000,
  }, async () => {
    const dbPath = join(dir, "control.db");
    const root = join(dir, "objects");
    const db = await openSqlite(dbPath);
    await db.migrate(uploadsMigrations);
    const objects = new FileObjectStore({ root });
    await objects.put("priv/expired.bin", "x");
    await new ClaimStore({ database: db }).create(newClaim({ key: "priv/expired.bin", expiresAt: 1 }));
    await objects.put("pub/used.png", "u");
    await objects.put("pub/orphan.png", "o");
    await db.run("CREATE TABLE posts (cover TEXT)");
    await db.run("INSERT INTO posts VALUES ('pub/used.png'), ('pub/missing.png')");
    await db.close();
    const common = ["--db", dbPath, "--objects", root, "--json"];

    const swept = await spawnCli(["sweep", ...common]);
    expect(swept).toMatchObject({ code: 0 });
    expect(JSON.parse(swept.stdout)).toEqual({ expired: ["priv/expired.bin"], recovered: [] });

    const drained = await run(["drain", ...common]);
    expect(JSON.parse(drained.stdout)).toEqual({ deleted: 1, deferred: 0, deadLettered: 0 });
    expect(await objects.head("priv/expired.bin")).toBeNull();

    const refs = ["--references-query", "SELECT cover AS key FROM posts", "--min-age-ms", "1"];
    await new Promise((r) => setTimeout(r, 5));
    const dry = await run(["reconcile", ...common, ...refs]);
    expect(dry.code).toBe(1);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      orphans: ["pub/orphan.png"],
      danglingReferences: ["pub/missing.png"],
    });
    const applied = await run(["reconcile", ...common, ...refs, "--apply"]);
    expect(JSON.parse(applied.stdout)).toMatchObject({ dryRun: false, quarantined: ["pub/orphan.png"] });
    expect(await objects.head("quarantine/pub/orphan.png")).not.toBeNull();
    expect(await objects.head("pub/used.png")).not.toBeNull();
    const check = await openSqlite(dbPath);
    expect(await new DeleteQueue({ database: check }).count()).toBe(0);
    await check.close();

    const bad = await run(["drain", "--db", dbPath, "--objects", "ftp://nope"]);
    expect(bad.code).toBe(2);
    await objects.close();
  });

  it("refuses a references query without a key column, before quarantining anything; NULL keys are no references", async () => {
    const dbPath = join(dir, "refs.db");
    const root = join(dir, "refs-objects");
    const db = await openSqlite(dbPath);
    await db.migrate(uploadsMigrations);
    // Written long ago on the store's clock, so the objects are old enough to be orphans.
    const objects = new FileObjectStore({ root, clock: new ManualClock(0) });
    await objects.put("pub/used.png", "u");
    await db.run("CREATE TABLE posts (cover TEXT)");
    await db.run("INSERT INTO posts VALUES ('pub/used.png'), (NULL)");
    await db.close();
    const common = ["--db", dbPath, "--objects", root, "--json", "--min-age-ms", "1"];

    const noKey = await run(["reconcile", ...common, "--references-query", "SELECT cover FROM posts", "--apply"]);
    expect(noKey.code).toBe(2);
    expect(String((noKey as { error?: unknown }).error)).toMatch(/column named key.*cover/);
    expect(await objects.head("pub/used.png")).not.toBeNull();
    expect((await objects.list("quarantine/")).objects).toEqual([]);

    const withNull = await run(["reconcile", ...common, "--references-query", "SELECT cover AS key FROM posts"]);
    expect(withNull.code).toBe(0);
    expect(JSON.parse(withNull.stdout)).toMatchObject({ orphans: [], danglingReferences: [] });
    await objects.close();
  });

  it("never creates a control database behind a mistyped --db", async () => {
    const missing = join(dir, "no-such-control.db");
    for (const command of ["sweep", "drain", "reconcile"]) {
      const extra = command === "reconcile" ? ["--references-query", "SELECT 1 AS key"] : [];
      const result = await run([command, "--db", missing, "--objects", join(dir, "objects"), ...extra]);
      expect(result.code, command).toBe(2);
      expect(String((result as { error?: unknown }).error), command).toMatch(/no database at/);
      expect(existsSync(missing), command).toBe(false);
    }
  });
});
