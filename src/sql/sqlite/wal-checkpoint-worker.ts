import { Worker } from "node:worker_threads";
import { ClosedError } from "../../errors.js";
import type { WalCheckpointResult } from "./sqlite-database.js";
import { mapSqliteError } from "./sqlite-errors.js";

/** How a worker thread loads an engine's driver: a module to `require` and the constructor it exports. */
export interface SqliteThreadDriver {
  /** A module id or an absolute path, resolved by the caller. */
  readonly module: string;
  /** The export that opens a database; `undefined` when the module itself is the constructor. */
  readonly exportName: string | undefined;
}

/** What {@link WalCheckpointWorker} needs to open its connection. */
export interface WalCheckpointWorkerOptions {
  readonly driver: SqliteThreadDriver;
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: "normal" | "full";
}

type Reply =
  | { readonly busy: number; readonly log: number; readonly checkpointed: number }
  | { readonly error: string; readonly code: unknown; readonly errcode: unknown };

/**
 * A RESTART checkpoint holds the write lock while it waits for readers to leave the WAL; waiting
 * as long as a writer's busy timeout would make writers time out behind it. It waits at most
 * this fraction of the busy timeout (and gives up, to be tried again next time); writers then
 * wait at most that plus the copy.
 */
const RESTART_WAIT_FRACTION = 0.2;

// The thread's code: CommonJS, driver-agnostic (both drivers open with `new X(path)` and run
// `prepare(sql).get()`). It writes nothing but checkpoints, so it never blocks our writer in
// PASSIVE mode. While a checkpoint runs, slot 0 of the shared flag is 1.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const mod = require(workerData.driver.module);
const Open = workerData.driver.exportName === undefined ? mod : mod[workerData.driver.exportName];
const db = new Open(workerData.path);
db.exec("PRAGMA busy_timeout = " + workerData.busyTimeoutMs);
db.exec("PRAGMA synchronous = " + (workerData.synchronous === "full" ? "FULL" : "NORMAL"));
db.exec("PRAGMA wal_autocheckpoint = 0");
const flag = new Int32Array(workerData.flag);
parentPort.on("message", (mode) => {
  if (mode === "close") {
    db.close();
    parentPort.close();
    return;
  }
  Atomics.store(flag, 0, 1);
  const restart = mode === "RESTART";
  try {
    if (restart) db.exec("PRAGMA busy_timeout = " + workerData.restartWaitMs);
    parentPort.postMessage(db.prepare("PRAGMA wal_checkpoint(" + mode + ")").get());
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message), code: err && err.code, errcode: err && err.errcode });
  } finally {
    if (restart) db.exec("PRAGMA busy_timeout = " + workerData.busyTimeoutMs);
    Atomics.store(flag, 0, 0);
  }
});
`;

/**
 * A worker thread with a SQLite connection of its own that runs WAL checkpoints on request, so
 * the copy into the database file and its fsync happen off the event loop. One request at a
 * time (the caller serializes them); replies come in order.
 */
export class WalCheckpointWorker {
  readonly #worker: Worker;
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  readonly #waiting: { resolve: (r: WalCheckpointResult) => void; reject: (err: unknown) => void }[] = [];
  readonly #exited: Promise<void>;
  #failure: unknown;

  constructor(options: WalCheckpointWorkerOptions) {
    this.#worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        ...options,
        restartWaitMs: Math.floor(options.busyTimeoutMs * RESTART_WAIT_FRACTION),
        flag: this.#flag.buffer,
      },
    });
    // Idle, the thread must not keep the process alive (a forgotten close()); while a request
    // or close() waits for it, it must, or Node would exit under a pending top-level await.
    this.#worker.unref();
    this.#worker.on("message", (reply: Reply) => {
      const waiter = this.#waiting.shift();
      if (this.#waiting.length === 0) this.#worker.unref();
      if (waiter === undefined) return;
      if ("error" in reply) {
        waiter.reject(mapSqliteError(Object.assign(new Error(reply.error), reply), "sql.checkpoint"));
      } else {
        waiter.resolve({
          busy: reply.busy === 1,
          logFrames: reply.log,
          checkpointedFrames: reply.checkpointed,
        });
      }
    });
    this.#worker.on("error", (err) => {
      this.#failure = mapSqliteError(err, "sql.checkpoint");
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once("exit", () => {
        this.#failure ??= new ClosedError("the checkpoint thread has exited", { op: "sql.checkpoint" });
        for (const w of this.#waiting.splice(0)) w.reject(this.#failure);
        resolve();
      });
    });
  }

  /** True while the thread is inside a checkpoint. */
  get running(): boolean {
    return Atomics.load(this.#flag, 0) === 1;
  }

  /** Runs `PRAGMA wal_checkpoint(mode)` on the thread's connection. */
  checkpoint(mode: "passive" | "restart"): Promise<WalCheckpointResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#worker.ref();
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage(mode.toUpperCase());
    });
  }

  /** Closes the thread's connection and waits for the thread to end. */
  async close(): Promise<void> {
    if (this.#failure === undefined) {
      this.#worker.ref();
      this.#worker.postMessage("close");
    }
    await this.#exited;
  }
}
