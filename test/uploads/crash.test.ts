import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { DeleteWorker } from "../../src/uploads/delete-worker.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useTempDir } from "../support/temp-dir.js";

const CHILD = fileURLToPath(new URL("./crash-worker-child.ts", import.meta.url));

describe("a DeleteWorker killed mid-batch", () => {
  const dir = useTempDir("storeroom-uploads-crash-");

  it("loses nothing: its leased rows come back after the lease and are processed", { timeout: 60_000 }, async () => {
    const dbPath = join(dir, "control.db");
    const root = join(dir, "objects");
    const db = await openSqlite(dbPath);
    await db.migrate(uploadsMigrations);
    const objects = new FaultyObjectStore(new FileObjectStore({ root }));
    const keys = Array.from({ length: 80 }, (_, i) => `priv/2026/01/01/crash-${i}.bin`);
    for (const key of keys) await objects.put(key, key);
    const queue = new DeleteQueue({ database: db });
    await queue.schedule(keys, "deleted");
    const leaseMs = 60_000;

    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dbPath, root, String(leaseMs)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on("exit", (_code, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d) => {
        if (String(d).includes("MID_BATCH")) resolve();
        if (String(d).includes("FINISHED")) reject(new Error("child finished instead of hanging"));
      });
      child.on("exit", () => reject(new Error(`child exited early: ${stderr}`)));
    });
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    const now = Date.now();
    const remaining = await queue.list();
    const leased = remaining.filter((r) => r.nextAttemptAt > now);
    expect(remaining.length).toBeGreaterThanOrEqual(75);
    expect(leased.length).toBeGreaterThanOrEqual(45);
    const clock = new ManualClock(now);
    const survivor = new DeleteWorker({ database: db, objects, clock, batchSize: 100 });
    const before = await survivor.runOnce();
    expect(before.leased).toBe(remaining.length - leased.length);
    expect(await queue.count()).toBe(leased.length);

    clock.advance(leaseMs + 1_000);
    const after = await survivor.runOnce();
    expect(after.leased).toBe(leased.length);
    expect(after.results.every((r) => r.status === "deleted")).toBe(true);
    expect(await queue.count()).toBe(0);
    for (const key of keys) expect(await objects.head(key)).toBeNull();
    await db.close();
  });
});
