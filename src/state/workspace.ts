import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ClosedError, InvalidArgumentError, InvalidKeyError } from "../errors.js";
import { openSqlite, type Row, type SqliteDatabase } from "../sql/index.js";
import { toJson } from "./journal.js";

/** How a workspace reaches its store; supplied by {@link StateStore}. */
export interface WorkspaceHost {
  now(): number;
  /** Writes the journal row and the summary entry in one transaction and emits the event. */
  commitWorkspace(name: string, aggregate: Record<string, number>): Promise<void>;
  /** Forgets an open workspace. */
  released(workspace: Workspace): void;
}

/** The file extension of workspace scratch databases. */
export const WORKSPACE_EXTENSION = ".sqlite";

/**
 * The longest workspace name, in UTF-8 bytes: its file and the `-journal`, `-wal` and `-shm` files
 * SQLite puts next to it must stay within the 255 bytes a file name may have on common file systems.
 */
export const MAX_WORKSPACE_NAME_BYTES = 255 - `${WORKSPACE_EXTENSION}-journal`.length;

/**
 * Throws {@link InvalidKeyError} unless `name` is a plain file name: non-empty, not `.`/`..`, no
 * `/` or `\`, at most {@link MAX_WORKSPACE_NAME_BYTES} bytes.
 */
export function checkWorkspaceName(name: string): void {
  if (typeof name === "string" && Buffer.byteLength(name) > MAX_WORKSPACE_NAME_BYTES) {
    throw new InvalidKeyError(
      `workspace name must be at most ${MAX_WORKSPACE_NAME_BYTES} bytes, got ${Buffer.byteLength(name)}`,
      {
        op: "state.newWorkspace",
      },
    );
  }
  if (
    typeof name !== "string" ||
    name === "" ||
    name === "." ||
    name === ".." ||
    /[/\\]/.test(name) ||
    name.includes("\u0000")
  ) {
    throw new InvalidKeyError(`invalid workspace name "${String(name)}": no path separators, not "." or ".."`, {
      op: "state.newWorkspace",
    });
  }
}

/**
 * A scratch SQLite database in the state directory that buffers many small records and commits
 * them to the store once, as one journal row plus a `workspace:<name>` / `summary` entry.
 * Obtain it with {@link StateStore.newWorkspace} or {@link StateStore.recoverOrphans}.
 *
 * @example
 * ```ts
 * const ws = await state.newWorkspace("import-42");
 * for (const row of rows) await ws.put("row", row);
 * await ws.commit(); // { row: 4000 } lands in the journal and in workspace:import-42/summary
 * ```
 */
export class Workspace {
  /** The workspace name (also the journal measurement). */
  readonly name: string;
  /** The scratch file. */
  readonly databasePath: string;
  readonly #db: SqliteDatabase;
  readonly #host: WorkspaceHost;
  #closed = false;

  private constructor(name: string, path: string, db: SqliteDatabase, host: WorkspaceHost) {
    this.name = name;
    this.databasePath = path;
    this.#db = db;
    this.#host = host;
  }

  /** @internal Creates a new scratch file; throws {@link InvalidArgumentError} when it already exists. */
  static async create(directory: string, name: string, host: WorkspaceHost): Promise<Workspace> {
    checkWorkspaceName(name);
    const path = join(directory, `${name}${WORKSPACE_EXTENSION}`);
    if (existsSync(path)) {
      throw new InvalidArgumentError(`workspace "${name}" already exists at ${path}`, { op: "state.newWorkspace" });
    }
    mkdirSync(directory, { recursive: true });
    return Workspace.openFile(name, path, host);
  }

  /** @internal Opens an existing (or new) scratch file, creating its tables if missing. */
  static async openFile(name: string, path: string, host: WorkspaceHost): Promise<Workspace> {
    const db = await openSqlite(path, { readConnection: false });
    try {
      await db.run(`CREATE TABLE IF NOT EXISTS workspace_entries (
        entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_kind TEXT NOT NULL,
        entry_data TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`);
      await db.run(
        "CREATE VIEW IF NOT EXISTS entries AS SELECT entry_id AS id, entry_kind AS kind, entry_data AS data, created_at FROM workspace_entries",
      );
      await db.get("SELECT COUNT(*) AS n FROM workspace_entries");
    } catch (err) {
      await db.close();
      throw err;
    }
    return new Workspace(name, path, db, host);
  }

  /** True after commit, discard or close. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Buffers one record: `kind` non-empty, `data` JSON-encoded (`null`/absent = `{}`). */
  async put(kind: string, data?: Record<string, unknown> | null): Promise<void> {
    this.#assertOpen("state.workspace.put");
    if (typeof kind !== "string" || kind === "") {
      throw new InvalidArgumentError("workspace kind must be a non-empty string", { op: "state.workspace.put" });
    }
    // SQLite would keep a lone surrogate as bytes that aggregate() reads back as other text.
    if (!kind.isWellFormed()) {
      throw new InvalidArgumentError("workspace kind must be well-formed Unicode (no lone surrogate)", {
        op: "state.workspace.put",
      });
    }
    await this.#db.run("INSERT INTO workspace_entries (entry_kind, entry_data, created_at) VALUES ($1, $2, $3)", [
      kind,
      toJson(data ?? {}, "state.workspace.put"),
      this.#host.now(),
    ]);
  }

  /** Records buffered so far. */
  async count(): Promise<number> {
    this.#assertOpen("state.workspace.count");
    return (await this.#db.get<{ n: number }>("SELECT COUNT(*) AS n FROM workspace_entries"))?.n ?? 0;
  }

  /** Records per kind. */
  async aggregate(): Promise<Record<string, number>> {
    this.#assertOpen("state.workspace.aggregate");
    const rows = await this.#db.all<{ kind: string; n: number }>(
      "SELECT entry_kind AS kind, COUNT(*) AS n FROM workspace_entries GROUP BY entry_kind ORDER BY entry_kind",
    );
    const out: Record<string, number> = {};
    for (const r of rows) out[r.kind] = r.n;
    return out;
  }

  /** Runs a read-only SQL statement on the buffer (writes throw {@link ReadOnlyError}). */
  async query(sql: string): Promise<Row[]> {
    this.#assertOpen("state.workspace.query");
    return this.#db.transaction((tx) => tx.all(sql), { readOnly: true });
  }

  /**
   * Commits the aggregate (one journal row + the `workspace:<name>`/`summary` entry, in one
   * transaction on the store), then closes and deletes the scratch file. Returns the aggregate.
   */
  async commit(): Promise<Record<string, number>> {
    const aggregate = await this.aggregate();
    await this.#host.commitWorkspace(this.name, aggregate);
    await this.#shut(true);
    return aggregate;
  }

  /** Closes and deletes the scratch file without committing. Idempotent. */
  async discard(): Promise<void> {
    await this.#shut(true);
    removeDatabaseFiles(this.databasePath);
  }

  /** Closes the handle but keeps the file, so {@link StateStore.recoverOrphans} finds it later. Idempotent. */
  async close(): Promise<void> {
    await this.#shut(false);
  }

  async #shut(remove: boolean): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#host.released(this);
      await this.#db.close();
    }
    if (remove) removeDatabaseFiles(this.databasePath);
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new ClosedError(`workspace "${this.name}" is closed`, { op });
  }
}

/** Removes a SQLite file and its `-wal` / `-shm` companions. */
export function removeDatabaseFiles(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}
