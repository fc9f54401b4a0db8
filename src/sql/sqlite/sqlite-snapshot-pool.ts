import type { SqliteConnection } from "./sqlite-connection.js";

/**
 * Read-only connections for work that must hold a snapshot across awaits: iterations (a
 * cursor keeps its connection busy) and read-only transactions (so they run beside the
 * writer instead of queueing behind it). A few idle connections are kept so the next user
 * does not pay an open.
 */
export class SqliteSnapshotPool {
  readonly #open: () => SqliteConnection;
  readonly #maxIdle: number;
  readonly #idle: SqliteConnection[] = [];
  readonly #inUse = new Set<SqliteConnection>();
  #closed = false;

  constructor(open: () => SqliteConnection, maxIdle = 2) {
    this.#open = open;
    this.#maxIdle = maxIdle;
  }

  take(): SqliteConnection {
    const conn = this.#idle.pop() ?? this.#open();
    this.#inUse.add(conn);
    return conn;
  }

  give(conn: SqliteConnection): void {
    this.#inUse.delete(conn);
    if (this.#closed || conn.inTransaction || this.#idle.length >= this.#maxIdle) conn.close();
    else this.#idle.push(conn);
  }

  /** Closes every connection, including ones still held by abandoned iterations. */
  close(): void {
    this.#closed = true;
    for (const conn of [...this.#idle, ...this.#inUse]) conn.close();
    this.#idle.length = 0;
    this.#inUse.clear();
  }
}
