/**
 * Child process of crash.test.ts: runs one DeleteWorker batch against the shared SQLite file
 * and object directory, prints "MID_BATCH" once a few deletes went through, then hangs in the
 * next delete until the parent kills it.
 */
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { DeleteWorker } from "../../src/uploads/delete-worker.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";

const [dbPath, root, leaseMs] = process.argv.slice(2) as [string, string, string];
const db = await openSqlite(dbPath);
const objects = new FaultyObjectStore(new FileObjectStore({ root }));
let deletes = 0;
objects.beforeCall = async (method) => {
  if (method !== "delete") return;
  deletes++;
  if (deletes === 6) {
    process.stdout.write("MID_BATCH\n");
    // A timer keeps the process alive: a bare pending promise would let Node exit before the parent's SIGKILL.
    setInterval(() => {}, 60_000);
    await new Promise(() => {});
  }
};
const worker = new DeleteWorker({ database: db, objects, batchSize: 50, concurrency: 1, leaseMs: Number(leaseMs) });
await worker.runOnce();
process.stdout.write("FINISHED\n");
