import { checkIntervalMs } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { InvalidArgumentError } from "../errors.js";
import {
  booleanOption,
  clockOption,
  functionOption,
  nonEmptyString,
  positiveInteger,
} from "../internal/option-checks.js";
import type { Database } from "../sql/index.js";

/** Where journal rows say they belong. Only `bucketName` is used; the other two are metadata. */
export interface JournalOptions {
  /** Metadata only (no network I/O happens), e.g. `"http://127.0.0.1:8086"`. */
  endpointUrl?: string;
  /** Metadata only, e.g. `"core"`. */
  organisation?: string;
  /** The `bucket_name` of journal rows, e.g. `"events"`. Default `"store"` when no journal is configured. */
  bucketName?: string;
}

/**
 * How {@link StateStore.open} builds a store. Give exactly one of `database` (any storeroom
 * database, also PostgreSQL; the caller owns it and the store never closes it) or
 * `databasePath` (the store opens SQLite itself and closes it on `close()`).
 *
 * @example
 * ```ts
 * const state = await StateStore.open({ database, purgeIntervalMs: 30_000 });
 * ```
 */
export interface StateStoreOptions {
  /** An open database the caller owns. */
  database?: Database;
  /** A SQLite file path or `":memory:"` the store opens and owns. Must not be empty. */
  databasePath?: string;
  /** Apply the `state` migrations on open. Default `true`; `false` when they were applied elsewhere. */
  migrate?: boolean;
  /** Background purge period in ms: an integer, `0` disables the timer (call `purgeExpired` yourself). Default 60000. */
  purgeIntervalMs?: number;
  /** Directory of workspace scratch files. Default `.core/state` (relative to the process CWD); trailing slashes are stripped. */
  workspaceStateDirectory?: string;
  /** Journal metadata; when any field is set, all three must be set. */
  journal?: JournalOptions;
  /** Source of time for TTLs, events and journal rows. Default {@link systemClock}. */
  clock?: Clock;
  /** Default buffer of {@link StateStore.watch} watchers. Default 16. */
  watchBufferSize?: number;
  /** Receives errors thrown by `onChange` callbacks and by the background purge. Default: `process.emitWarning`. */
  onListenerError?: (err: unknown) => void;
  /**
   * How long the change log keeps changes, in ms: readers that fall further behind
   * ({@link StateStore.changesSince}, a resuming SSE stream, watchers following other
   * processes) are told to reload. Pruned with the background purge. Default 3600000 (1 h).
   * `0` keeps no change log: writes still get versions and events reach this process's
   * watchers, but nothing can catch up or follow other processes, and `changesSince` answers
   * `reset` for any version before the newest.
   */
  changeRetentionMs?: number;
  /**
   * How often, in ms, the store looks in the change log for changes other processes committed
   * (other connections to the same SQLite file, other nodes on PostgreSQL), so that this
   * process's watchers and callbacks get them too, in version order. An integer; `0` disables
   * the timer (a local write still delivers the changes committed before it). Default 250.
   * Without a change log (`changeRetentionMs: 0`) only this process's changes are delivered.
   */
  changePollIntervalMs?: number;
}

/** A validated {@link StateStoreOptions} with every default filled in. */
export interface ResolvedStateStoreOptions {
  readonly databasePath: string | undefined;
  readonly database: Database | undefined;
  readonly migrate: boolean;
  readonly purgeIntervalMs: number;
  readonly workspaceStateDirectory: string;
  readonly journal: Readonly<Required<JournalOptions>> | undefined;
  readonly bucketName: string;
  readonly clock: Clock;
  readonly watchBufferSize: number;
  readonly onListenerError: (err: unknown) => void;
  readonly changeRetentionMs: number;
  readonly changePollIntervalMs: number;
}

export const DEFAULT_PURGE_INTERVAL_MS = 60_000;
export const DEFAULT_WORKSPACE_STATE_DIRECTORY = ".core/state";
export const DEFAULT_JOURNAL_BUCKET = "store";
export const DEFAULT_WATCH_BUFFER_SIZE = 16;
export const DEFAULT_CHANGE_RETENTION_MS = 3_600_000;
export const DEFAULT_CHANGE_POLL_INTERVAL_MS = 250;

/** @deprecated Renamed {@link StateStoreOptions}. */
export type StateStoreConfig = StateStoreOptions;
/** @deprecated Renamed {@link JournalOptions}. */
export type JournalConfig = JournalOptions;
/** @deprecated Renamed {@link ResolvedStateStoreOptions}. */
export type NormalisedStateConfig = ResolvedStateStoreOptions;

/** Strips trailing slashes (keeping a lone `/`). */
export function normalizeDirectory(dir: string): string {
  const stripped = dir.replace(/[/\\]+$/, "");
  return stripped === "" ? (dir === "" ? "" : "/") : stripped;
}

/** Validates `config` and fills defaults; throws {@link InvalidArgumentError} naming the bad option. */
export function normalizeStateStoreOptions(config: StateStoreOptions): ResolvedStateStoreOptions {
  if (config === null || typeof config !== "object") {
    throw new InvalidArgumentError("state config must be an object", { op: "state.open" });
  }
  const { databasePath, database } = config;
  if (databasePath !== undefined && database !== undefined) {
    throw new InvalidArgumentError("give either databasePath or database, not both", { op: "state.open" });
  }
  if (database === undefined) {
    if (typeof databasePath !== "string" || databasePath === "") {
      throw new InvalidArgumentError('database path is empty; use a file path or ":memory:", or pass database', {
        op: "state.open",
      });
    }
  } else if (typeof database.get !== "function" || typeof database.transaction !== "function") {
    throw new InvalidArgumentError("database must be a storeroom Database (openSqlite / openPostgres)", {
      op: "state.open",
    });
  }
  const purgeIntervalMs = checkIntervalMs(
    config.purgeIntervalMs,
    "purgeIntervalMs",
    "state.open",
    DEFAULT_PURGE_INTERVAL_MS,
  );
  const migrate = booleanOption(config.migrate, "migrate", "state.open", true);
  const buffer = positiveInteger(config.watchBufferSize, "watchBufferSize", "state.open", DEFAULT_WATCH_BUFFER_SIZE);
  const dir =
    config.workspaceStateDirectory === undefined
      ? DEFAULT_WORKSPACE_STATE_DIRECTORY
      : nonEmptyString(config.workspaceStateDirectory, "workspaceStateDirectory", "state.open");
  const clock = clockOption<Clock>(config.clock, "state.open", systemClock);
  const onListenerError =
    functionOption(config.onListenerError, "onListenerError", "state.open") ?? defaultListenerError;
  const journal = validateJournal(config.journal);
  const changeRetentionMs = config.changeRetentionMs ?? DEFAULT_CHANGE_RETENTION_MS;
  if (!Number.isSafeInteger(changeRetentionMs) || changeRetentionMs < 0) {
    throw new InvalidArgumentError(
      `changeRetentionMs must be 0 (no change log) or a positive integer, got ${String(changeRetentionMs)}`,
      { op: "state.open" },
    );
  }
  const changePollIntervalMs = checkIntervalMs(
    config.changePollIntervalMs,
    "changePollIntervalMs",
    "state.open",
    DEFAULT_CHANGE_POLL_INTERVAL_MS,
  );
  return Object.freeze({
    databasePath,
    database,
    migrate,
    purgeIntervalMs,
    workspaceStateDirectory: normalizeDirectory(dir),
    journal,
    bucketName: journal?.bucketName ?? DEFAULT_JOURNAL_BUCKET,
    clock,
    watchBufferSize: buffer,
    onListenerError,
    changeRetentionMs,
    changePollIntervalMs,
  });
}

/** @deprecated Renamed {@link normalizeStateStoreOptions}. */
export const normaliseStateConfig = normalizeStateStoreOptions;

function validateJournal(journal: JournalOptions | undefined): Readonly<Required<JournalOptions>> | undefined {
  if (journal === undefined) return undefined;
  const { endpointUrl = "", organisation = "", bucketName = "" } = journal;
  if (endpointUrl === "" && organisation === "" && bucketName === "") return undefined;
  const problem =
    endpointUrl === ""
      ? 'endpoint URL is empty; use values like "http://127.0.0.1:8086"'
      : organisation === ""
        ? 'organisation is empty; use values like "core"'
        : bucketName === ""
          ? 'bucket name is empty; use values like "events"'
          : undefined;
  if (problem !== undefined) throw new InvalidArgumentError(`journal config: ${problem}`, { op: "state.open" });
  return Object.freeze({ endpointUrl, organisation, bucketName });
}

function defaultListenerError(err: unknown): void {
  process.emitWarning(`storeroom state: a listener or background purge failed: ${String(err)}`, "StateStoreWarning");
}
