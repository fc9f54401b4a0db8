import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import {
  openSqlite,
  type SqliteDatabase,
  type SqliteEngine,
  type SqliteOptions,
  type WalCheckpointResult,
} from "../../src/sql/index.js";
import { sqliteThreadDriver } from "../../src/sql/sqlite/sqlite-engine.js";
import { WalCheckpointWorker } from "../../src/sql/sqlite/wal-checkpoint-worker.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-bgckpt-");
let counter = 0;
const open: SqliteDatabase[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

/** A database of `engine` with a table `t (v BLOB)`, and the size of its WAL file. */
async function fresh(engine: SqliteEngine, options: SqliteOptions = {}) {
  const path = join(dir, `db-${counter++}.sqlite`);
  const db = await openSqlite(path, { engine, ...options });
  open.push(db);
  await db.run("CREATE TABLE t (v BLOB)");
  const walSize = () => statSync(`${path}-wal`).size;
  const write = async (rows: number, bytes = 4000) => {
    for (let i = 0; i < rows; i++) await db.run("INSERT INTO t VALUES (randomblob($1))", [bytes]);
  };
  return { db, walSize, write };
}

/** Resolves on the event loop's next check phase: lets replies of the checkpoint thread in. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs background checkpoints of `db` while `writeOne` commits between event-loop turns, until
 * one is not busy (at most 20). A PASSIVE pass answers busy, and is retried on the next timer
 * tick in service, when it reads the WAL index while a commit is rewriting it.
 */
async function checkpointWhileWriting(db: SqliteDatabase, writeOne: () => Promise<void>) {
  let result: WalCheckpointResult | undefined;
  for (let attempt = 0; attempt < 20 && (result === undefined || result.busy); attempt++) {
    let finished = false;
    const checkpoint = db.checkpointInBackground().finally(() => {
      finished = true;
    });
    while (!finished) {
      await writeOne();
      await tick();
    }
    result = await checkpoint;
  }
  if (result === undefined) throw new Error("no checkpoint ran");
  return result;
}

describe.each(availableSqliteEngines())("backgroundCheckpoint on %s", (engine) => {
  it("copies the whole WAL into the database file, after which the WAL starts over instead of growing", async () => {
    const { db, walSize, write } = await fresh(engine, { backgroundCheckpoint: { intervalMs: 0 } });
    await write(200);
    const before = walSize();
    await write(100);
    // Automatic checkpoints are off: without one the WAL only grows.
    expect(walSize()).toBeGreaterThan(before);
    const result = await db.checkpointInBackground();
    expect(result.busy).toBe(false);
    expect(result.logFrames).toBeGreaterThan(300);
    expect(result.checkpointedFrames).toBe(result.logFrames);
    const full = walSize();
    await write(100);
    expect(walSize()).toBe(full);
    expect(await db.get<{ n: number }>("SELECT count(*) AS n FROM t")).toEqual({ n: 400 });
  });

  it("lets commits go on while a checkpoint runs on its thread", async () => {
    const { db, write } = await fresh(engine, { backgroundCheckpoint: { intervalMs: 0 } });
    await write(600);
    let during = 0;
    let written = 0;
    const result = await checkpointWhileWriting(db, async () => {
      await db.run("INSERT INTO t VALUES (randomblob(100))");
      written++;
      if (db.checkpointing) during++;
    });
    expect(result.busy).toBe(false);
    expect(result.checkpointedFrames).toBeGreaterThan(0);
    expect(during).toBeGreaterThan(0);
    expect(db.checkpointing).toBe(false);
    expect(await db.get<{ n: number }>("SELECT count(*) AS n FROM t")).toEqual({ n: 600 + written });
  });

  it("checkpoints on its timer: the WAL stops growing without being asked", async () => {
    const { walSize, write } = await fresh(engine, { backgroundCheckpoint: { intervalMs: 5 } });
    await write(300);
    // Each small write appends a frame unless a checkpoint copied the WAL and it started over.
    const deadline = Date.now() + 20_000;
    let unchanged = 0;
    while (unchanged < 3) {
      expect(Date.now()).toBeLessThan(deadline);
      const size = walSize();
      await write(1, 100);
      unchanged = walSize() === size ? unchanged + 1 : 0;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(unchanged).toBe(3);
  });

  it("restarts the WAL when commits never pause long enough for a PASSIVE pass to copy it all", async () => {
    const { db, walSize, write } = await fresh(engine, { backgroundCheckpoint: { intervalMs: 0, restartFrames: 50 } });
    await write(600);
    const result = await checkpointWhileWriting(db, () => write(1));
    // The RESTART pass holds the write lock, so it copies everything.
    expect(result.busy).toBe(false);
    expect(result.checkpointedFrames).toBe(result.logFrames);
    const size = walSize();
    await write(20);
    expect(walSize()).toBe(size);
  });

  it("a RESTART kept waiting by a reader gives up after a fifth of the busy timeout instead of holding writers back until they time out", async () => {
    const path = join(dir, `db-${counter++}.sqlite`);
    const db = await openSqlite(path, { engine, busyTimeoutMs: 10_000 });
    open.push(db);
    await db.run("CREATE TABLE t (v BLOB)");
    await db.run("INSERT INTO t VALUES (randomblob(4000))");
    // A read transaction left open on the WAL: a RESTART must wait for it to end.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reading = false;
    const reader = db.transaction(
      async (tx) => {
        await tx.get("SELECT count(*) FROM t");
        reading = true;
        await held;
      },
      { readOnly: true },
    );
    while (!reading) await tick();
    const worker = new WalCheckpointWorker({
      driver: sqliteThreadDriver(engine),
      path,
      busyTimeoutMs: 10_000,
      synchronous: "normal",
    });
    try {
      const restart = worker.checkpoint("restart");
      while (!worker.running) await tick();
      // A writer that gives up after 5 s: a RESTART waiting out its 10 s busy timeout would refuse it.
      const writer = await openSqlite(path, { engine, busyTimeoutMs: 5_000 });
      open.push(writer);
      await writer.run("INSERT INTO t VALUES (randomblob(4000))");
      expect((await restart).busy).toBe(true);
    } finally {
      release();
      await reader;
      await worker.close();
    }
    expect(await db.get<{ n: number }>("SELECT count(*) AS n FROM t")).toEqual({ n: 2 });
  });

  it("refuses options it cannot honour, naming them, and opens nothing", async () => {
    const path = join(dir, `refused-${counter++}.sqlite`);
    await expect(openSqlite(":memory:", { engine, backgroundCheckpoint: {} })).rejects.toThrow(InvalidArgumentError);
    await expect(openSqlite(path, { engine, backgroundCheckpoint: {}, walAutocheckpoint: 1000 })).rejects.toThrow(
      /walAutocheckpoint/,
    );
    await expect(openSqlite(path, { engine, backgroundCheckpoint: { intervalMs: -1 } })).rejects.toThrow(
      /backgroundCheckpoint.intervalMs/,
    );
    await expect(openSqlite(path, { engine, backgroundCheckpoint: { restartFrames: 0 } })).rejects.toThrow(
      /backgroundCheckpoint.restartFrames/,
    );
    expect(() => statSync(path)).toThrow();
    const plain = await openSqlite(join(dir, `plain-${counter++}.sqlite`), { engine });
    open.push(plain);
    await expect(plain.checkpointInBackground()).rejects.toThrow(/backgroundCheckpoint/);
    expect(plain.checkpointing).toBe(false);
  });

  it("stops its thread on close, after which a checkpoint is refused", async () => {
    const { db, write } = await fresh(engine, { backgroundCheckpoint: { intervalMs: 1 } });
    await write(50);
    await db.close();
    await expect(db.checkpointInBackground()).rejects.toThrow(/closed/);
  });
});

describe("backgroundCheckpoint in a process of its own", () => {
  it("keeps the process alive while a checkpoint or close() waits for the thread, and lets it exit after", async () => {
    const child = fileURLToPath(new URL("./fixtures/background-checkpoint-child.mjs", import.meta.url));
    if (!existsSync(fileURLToPath(new URL("../../dist/sql/index.js", import.meta.url)))) {
      throw new Error("dist/sql/index.js is missing: run `npm run build` (npm test does)");
    }
    // An idle thread that kept the process alive would time this out; one that did not while
    // awaited would end it with code 13 (unsettled top-level await) and print nothing.
    const { stdout } = await promisify(execFile)(process.execPath, [child, join(dir, `child-${counter++}.sqlite`)], {
      timeout: 30_000,
    });
    const result = JSON.parse(stdout) as { busy: boolean; logFrames: number; checkpointedFrames: number };
    expect(result.busy).toBe(false);
    expect(result.logFrames).toBeGreaterThan(50);
    expect(result.checkpointedFrames).toBe(result.logFrames);
  });
});
