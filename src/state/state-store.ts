import { BackgroundJob } from "../background-job.js";
import { ClosedError, InvalidArgumentError } from "../errors.js";
import { positiveInteger } from "../internal/option-checks.js";
import { type Database, type Executor, likePrefix, openSqlite, tableExists } from "../sql/index.js";
import { ChangeFeed } from "./change-feed.js";
import {
  ChangeLog,
  type ChangesSince,
  type ChangesSinceOptions,
  currentVersion,
  pruneChanges,
  readChanges,
} from "./change-log.js";
import { checkText, EntryOperations } from "./entry-operations.js";
import { EventHub } from "./event-hub.js";
import { insertJournalRow, type JournalCommit, type JournalRow, queryJournal } from "./journal.js";
import {
  type CompactOptions,
  type CompactResult,
  compactJournal,
  normalizeCompactOptions,
} from "./journal-compactor.js";
import { normalizeScope, type ScopeQuota } from "./scoped-operations.js";
import { ScopedStateStore } from "./scoped-state-store.js";
import type { ChangeCallback, StateEvent } from "./state-event.js";
import { stateMigrations } from "./state-schema.js";
import {
  normalizeDirectory,
  normalizeStateStoreOptions,
  type ResolvedStateStoreOptions,
  type StateStoreOptions,
} from "./state-store-options.js";
import { StateTransaction } from "./state-transaction.js";
import type { EventMapper, StateWatcher } from "./state-watcher.js";
import { TransactionScope } from "./transaction-scope.js";
import { Workspace, type WorkspaceHost } from "./workspace.js";
import { type RecoveredWorkspaces, recoverWorkspaces } from "./workspace-recovery.js";

const UPSERT_SUMMARY =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at, entry_version) VALUES ($1, 'summary', $2, NULL, $3) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = NULL, " +
  "entry_version = excluded.entry_version";

/**
 * The grouped state store: string values in named groups, TTLs from an injectable
 * clock, change events, transactions, namespaced stores with quotas, an append-only journal
 * with compressed archives, and scratch workspaces. Runs on SQLite or PostgreSQL.
 *
 * @example
 * ```ts
 * const state = await StateStore.open({ database: await openSqlite("./state.db") });
 * await state.set("config", "colour", "blue");
 * await state.setWithTtl("session", "token", "abc123", 60_000);
 * console.log(await state.get("config", "colour")); // "blue"
 * await state.close();
 * ```
 */
export class StateStore extends EntryOperations {
  readonly #db: Database;
  readonly #ownsDb: boolean;
  readonly #config: ResolvedStateStoreOptions;
  readonly #hub: EventHub;
  readonly #workspaces = new Map<string, Workspace>();
  readonly #host: WorkspaceHost;
  readonly #scope = new TransactionScope("state store");
  readonly #purge: BackgroundJob<number>;
  readonly #follow: BackgroundJob<number>;
  readonly #log: ChangeLog;
  readonly #feed: ChangeFeed;
  #closed = false;
  /** The shutdown {@link StateStore.close} started; later calls wait for the same one. */
  #closing: Promise<void> | undefined;

  private constructor(
    db: Database,
    ownsDb: boolean,
    config: ResolvedStateStoreOptions,
    log: ChangeLog,
    hub: EventHub,
    feed: ChangeFeed,
  ) {
    super(config.clock, log);
    this.#log = log;
    this.#hub = hub;
    this.#feed = feed;
    this.#follow = new BackgroundJob({
      name: "state change follower",
      intervalMs: log.logged ? config.changePollIntervalMs : 0,
      clock: config.clock,
      onError: config.onListenerError,
      run: () => this.#untilClosed(() => feed.follow()),
    });
    this.#purge = new BackgroundJob({
      name: "state purge",
      intervalMs: config.purgeIntervalMs,
      clock: config.clock,
      onError: config.onListenerError,
      run: () =>
        this.#untilClosed(async () => {
          const purged = await super.purgeExpired();
          await this.pruneChanges();
          return purged;
        }),
    });
    this.#db = db;
    this.#ownsDb = ownsDb;
    this.#config = config;
    this.#host = {
      now: () => Math.floor(config.clock.now()),
      commitWorkspace: (name, aggregate) => this.#commitWorkspace(name, aggregate),
      released: (ws) => {
        if (this.#workspaces.get(ws.name) === ws) this.#workspaces.delete(ws.name);
      },
    };
  }

  /**
   * Validates `options` (throwing {@link InvalidArgumentError} naming the bad option), uses
   * `database` or opens SQLite for `databasePath`, applies the `state` migrations unless
   * `migrate: false` (upgrading older layouts found in place: a `kv` table, `entries` without
   * `expires_at`) and starts the background purge.
   */
  static async open(options: StateStoreOptions): Promise<StateStore> {
    const resolved = normalizeStateStoreOptions(options);
    const owns = resolved.database === undefined;
    const db = resolved.database ?? (await openSqlite(resolved.databasePath as string, { clock: resolved.clock }));
    const hub = new EventHub(resolved.onListenerError);
    let store: StateStore | undefined;
    let log: ChangeLog;
    let feed: ChangeFeed;
    try {
      if (resolved.migrate) await db.migrate(stateMigrations);
      log = await ChangeLog.open(db, { logged: resolved.changeRetentionMs > 0 });
      const executor = () => store?.executor("state.follow") ?? db;
      feed = new ChangeFeed({ executor, logged: log.logged, hub }, await startVersion(db, resolved.migrate));
    } catch (err) {
      if (owns) await db.close();
      throw err;
    }
    store = new StateStore(db, owns, resolved, log, hub, feed);
    store.#purge.start();
    store.#follow.start();
    return store;
  }

  /** The validated options, defaults filled in. */
  get config(): ResolvedStateStoreOptions {
    return this.#config;
  }

  /** The SQLite path when the store opened the database itself. */
  get databasePath(): string | undefined {
    return this.#config.databasePath;
  }

  /** Where workspace files live. */
  get workspaceStateDirectory(): string {
    return this.#config.workspaceStateDirectory;
  }

  /** True when all three journal fields were configured. */
  get journalConfigured(): boolean {
    return this.#config.journal !== undefined;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn` in one database transaction with the store's read/write API. Commits when it
   * resolves, rolls back and rethrows when it rejects. Events are delivered after commit only.
   * Inside `fn`, use `tx`, not the store: calling the store (or a scoped view of it) there
   * throws {@link TransactionError} on every engine, since it would wait for its own
   * transaction (SQLite) or write outside it (PostgreSQL).
   */
  async transaction<T>(fn: (tx: StateTransaction) => Promise<T>): Promise<T> {
    const db = this.executor("state.transaction");
    const events: StateEvent[] = [];
    const result = await this.#scope.run(() =>
      db.transaction(async (sqlTx) => {
        const tx = new StateTransaction(sqlTx, this.#config.clock, this.#log, events);
        try {
          return await fn(tx);
        } finally {
          tx.finish();
        }
      }),
    );
    await this.#feed.deliver(events);
    return result;
  }

  /**
   * Watches one group, or `"*"` for every change. Events are buffered (default
   * `watchBufferSize`, 16); when the buffer is full new events are dropped and counted in
   * `watcher.dropped`. Registration is synchronous, so no change after this call is missed.
   * On a closed store the watcher is already ended.
   */
  watch(group: string, options: { bufferSize?: number } = {}): StateWatcher {
    return this.watchMapped(group, options.bufferSize);
  }

  /** @internal Watch with a filter/transform (scoped stores). */
  watchMapped(group: string, bufferSize: number | undefined, map?: EventMapper): StateWatcher {
    if (typeof group !== "string") {
      throw new InvalidArgumentError(`group must be a string or "*", got ${typeof group}`, { op: "state.watch" });
    }
    const size = positiveInteger(bufferSize, "bufferSize", "state.watch", this.#config.watchBufferSize);
    const watcher = this.#hub.watch(group, size, map);
    if (this.#closed) void watcher.close();
    return watcher;
  }

  /**
   * The changes after `version` (oldest first, at most `limit`, default 1000), from the change
   * log that keeps `changeRetentionMs` of history: how a reader that was away catches up.
   * `reset: true` (and no changes) when the log no longer reaches back to `version`, or
   * `version` is ahead of the store: reload the state instead. Filter with `group` (one group)
   * or `groupPrefix`.
   *
   * @example
   * ```ts
   * let seen = await state.version();
   * // ... later
   * const { changes, reset, version } = await state.changesSince(seen, { groupPrefix: "config" });
   * if (reset) reload(); else changes.forEach(apply);
   * seen = version;
   * ```
   */
  async changesSince(version: number, options: ChangesSinceOptions = {}): Promise<ChangesSince> {
    const op = "state.changesSince";
    const ex = this.executor(op);
    if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
      throw new InvalidArgumentError(`version must be zero or a positive integer, got ${String(version)}`, { op });
    }
    const limit = positiveInteger(options.limit, "limit", op, 1000);
    const { group, groupPrefix } = options;
    if (group !== undefined && typeof group !== "string")
      throw new InvalidArgumentError("group must be a string", { op });
    if (groupPrefix !== undefined && typeof groupPrefix !== "string") {
      throw new InvalidArgumentError("groupPrefix must be a string", { op });
    }
    checkText(ex, op, group ?? "", groupPrefix ?? "");
    return readChanges(
      ex,
      version,
      { ...(group === undefined ? {} : { group }), ...(groupPrefix === undefined ? {} : { groupPrefix }) },
      limit,
      likePrefix,
    );
  }

  /**
   * Drops change-log entries older than `changeRetentionMs`; the background purge runs it.
   * Returns how many were dropped.
   */
  async pruneChanges(): Promise<number> {
    const now = Math.floor(this.#config.clock.now());
    return pruneChanges(this.executor("state.pruneChanges"), now - this.#config.changeRetentionMs);
  }

  /** Ends a watcher (same as `watcher.close()`). Idempotent. */
  async unwatch(watcher: StateWatcher): Promise<void> {
    await watcher.close();
  }

  /**
   * Calls `callback` synchronously after each committed change. Callbacks may subscribe or
   * unsubscribe re-entrantly; a throwing callback is reported to `onListenerError` and never
   * reaches the writer or other callbacks. Returns an idempotent unsubscribe function.
   */
  onChange(callback: ChangeCallback): () => void {
    if (this.#closed) return () => {};
    return this.#hub.onChange(callback);
  }

  /** A namespaced view with optional quotas; see {@link ScopedStateStore}. Throws {@link InvalidArgumentError} for a bad namespace or quota. */
  scoped(namespace: string, quota?: ScopeQuota): ScopedStateStore {
    return new ScopedStateStore(this, namespace, normalizeScope(namespace, quota));
  }

  /** Appends a journal row (bucket from the config, default `"store"`). `measurement` must be non-empty. */
  async commitToJournal(
    measurement: string,
    fields?: Record<string, unknown> | null,
    tags?: Record<string, string> | null,
  ): Promise<JournalCommit> {
    const db = this.executor("state.commitToJournal");
    return insertJournalRow(
      db,
      this.#config.bucketName,
      measurement,
      fields,
      tags,
      Math.floor(this.#config.clock.now()),
    );
  }

  /**
   * Queries the journal: `""` returns every non-archived row in commit order; a `SELECT` or
   * `WITH` statement runs as SQL in a read-only transaction (writes throw {@link ReadOnlyError});
   * otherwise the Flux subset (`from`, `range`, `filter` on `_measurement`, `_bucket`, tags and
   * fields) applies, and unsupported Flux throws {@link UnsupportedError} naming the part.
   */
  async queryJournal(query = ""): Promise<JournalRow[]> {
    return queryJournal(this.executor("state.queryJournal"), query, Math.floor(this.#config.clock.now()));
  }

  /**
   * Archives old journal rows to a compressed JSONL file; see {@link CompactOptions}. Each row
   * lands in exactly one archive even when compactions run at the same time, in this process
   * or others: one that finds rows already taken by another starts over with what is still due,
   * then holding a compaction lock so it cannot lose again.
   */
  async compact(options: CompactOptions): Promise<CompactResult> {
    this.executor("state.compact");
    return compactJournal(this.#db, normalizeCompactOptions(options), Math.floor(this.#config.clock.now()));
  }

  /** Creates a workspace scratch database `<state dir>/<name>.sqlite`; the name must be a plain file name and new. */
  async newWorkspace(name: string): Promise<Workspace> {
    this.executor("state.newWorkspace");
    const ws = await Workspace.create(this.#config.workspaceStateDirectory, name, this.#host);
    this.#workspaces.set(name, ws);
    return ws;
  }

  /**
   * Opens the workspaces left in `directory` (default: the configured state directory) that
   * this store does not have open. Corrupt files are moved to `quarantine/` and reported.
   */
  async recoverOrphans(directory?: string): Promise<RecoveredWorkspaces> {
    this.executor("state.recoverOrphans");
    const dir =
      directory === undefined || directory === ""
        ? this.#config.workspaceStateDirectory
        : normalizeDirectory(directory);
    const found = await recoverWorkspaces(dir, new Set(this.#workspaces.keys()), this.#host);
    for (const ws of found.workspaces) this.#workspaces.set(ws.name, ws);
    return found;
  }

  /**
   * Stops the background purge (waiting for a running one), ends every watcher, drops
   * callbacks, closes open workspaces (keeping their files) and closes the database if the
   * store opened it. Idempotent: every call resolves once all of that is done.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    await this.#purge.stop();
    await this.#follow.stop();
    await this.#hub.closeAll();
    for (const ws of [...this.#workspaces.values()]) await ws.close();
    if (this.#ownsDb) await this.#db.close();
  }

  /** Runs a background job's work (a count); a run that close() overtook ends quietly (0) instead of reporting ClosedError. */
  async #untilClosed(work: () => Promise<number>): Promise<number> {
    try {
      return await work();
    } catch (err) {
      if (this.#closed && err instanceof ClosedError) return 0;
      throw err;
    }
  }

  protected executor(op: string): Executor {
    if (this.#closed) throw new ClosedError("state store is closed", { op });
    this.#scope.assertOutside(op);
    return this.#db;
  }

  protected atomically<T>(op: string, fn: (ex: Executor) => Promise<T>): Promise<T> {
    return this.executor(op).transaction(fn);
  }

  protected publish(events: readonly StateEvent[]): Promise<void> | undefined {
    return this.#feed.deliver(events);
  }

  async #commitWorkspace(name: string, aggregate: Record<string, number>): Promise<void> {
    const group = `workspace:${name}`;
    const value = JSON.stringify(aggregate);
    const now = Math.floor(this.#config.clock.now());
    const events = await this.executor("state.workspace.commit").transaction(async (tx) => {
      const version = await this.#log.begin(tx);
      await insertJournalRow(tx, this.#config.bucketName, name, aggregate, { workspace: name }, now);
      await tx.run(UPSERT_SUMMARY, [group, value, version]);
      return this.#log.record(tx, [{ type: "set", group, key: "summary", value, version }], now);
    });
    await this.#feed.deliver(events);
  }
}

/**
 * The version a store's change feed starts after: the store's version at open. Without
 * migrations the tables may not exist yet (they are created elsewhere, later); the feed then
 * starts at its first delivery.
 */
async function startVersion(db: Database, migrated: boolean): Promise<number | undefined> {
  if (migrated) return currentVersion(db);
  return (await tableExists(db, "state_version")) ? currentVersion(db) : undefined;
}
