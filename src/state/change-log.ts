import { type Executor, type TransactionLockKey, takeTransactionLock } from "../sql/index.js";
import type { StateEvent, StateEventType } from "./state-event.js";

/** A change about to be recorded, with the version it was given (its timestamp comes from {@link recordChanges}). */
export interface ChangeDraft {
  readonly type: StateEventType;
  readonly group: string;
  readonly key: string;
  readonly value?: string;
  readonly version: number;
}

/** Options of {@link StateStore.changesSince}. */
export interface ChangesSinceOptions {
  /** Only changes of this group. */
  group?: string;
  /** Only changes of groups starting with this prefix (literally). */
  groupPrefix?: string;
  /** At most this many changes (a positive integer). Default 1000. */
  limit?: number;
}

/** What {@link StateStore.changesSince} returns. */
export interface ChangesSince {
  /** The changes after the requested version, oldest first (at most `limit`). */
  readonly changes: readonly StateEvent[];
  /**
   * True when the log no longer holds every change after the requested version (they were
   * older than `changeRetentionMs`, or the version is from the future, e.g. another database):
   * the caller must reload the state instead of applying `changes`, which is then empty.
   */
  readonly reset: boolean;
  /** The store's version when the log was read. */
  readonly version: number;
  /** True when more changes follow the returned ones (`limit` was reached). */
  readonly more: boolean;
}

/** Which changes {@link readChanges} returns. */
export interface ChangeFilter {
  /** Only this group. */
  readonly group?: string;
  /** Only groups starting with this prefix (literally). */
  readonly groupPrefix?: string;
}

interface ChangeRow {
  version: number | string;
  change_type: StateEventType;
  group_name: string;
  entry_key: string;
  entry_value: string | null;
  changed_at: number | string;
}

/**
 * The store version: the newest change in the log or the counter in `state_version`, whichever
 * is higher. The counter moves only when changes are not logged (`changeRetentionMs: 0`), and
 * holds the floor of an empty log.
 */
const CURRENT_VERSION =
  "SELECT COALESCE(MAX(v), 0) AS version FROM (SELECT MAX(version) AS v FROM state_changes " +
  "UNION ALL SELECT version AS v FROM state_version WHERE id = 1) versions";
/** Unlogged changes move the counter, and readers of the log must reload past them. */
const ADVANCE_UNLOGGED = "UPDATE state_version SET version = $1, pruned_through = $1 WHERE id = 1";

/** How a store gives out versions and records its changes; see {@link ChangeLog.open}. */
export interface ChangeLogOptions {
  /** Append changes to `state_changes`; `false` when `changeRetentionMs` is 0. */
  readonly logged: boolean;
}

/**
 * Gives out store versions and records changes, one store's policy in one place. Writers are
 * serialised per store: SQLite's write transaction does it; on PostgreSQL a transaction-scoped
 * advisory lock named after the store's schema does, so versions are given and committed in the
 * same order (what a reader tailing the log by version relies on) and version checks made after
 * it see no concurrent writer.
 */
export class ChangeLog {
  /** Whether changes are appended to the log. */
  readonly logged: boolean;
  readonly #lock: TransactionLockKey;

  private constructor(logged: boolean, lock: TransactionLockKey) {
    this.logged = logged;
    this.#lock = lock;
  }

  /**
   * The store's change log on `ex`. Where writers need a lock (PostgreSQL), it is named after
   * the current schema, so stores in different schemas of one database never wait for each other.
   */
  static async open(ex: Executor, options: ChangeLogOptions): Promise<ChangeLog> {
    let name = "storeroom.state.versions";
    if (ex.dialect.advisoryLocks) {
      const row = await ex.get<{ schema: string | null }>("SELECT current_schema() AS schema");
      name = `${name}:${row?.schema ?? ""}`;
    }
    return new ChangeLog(options.logged, { name });
  }

  /**
   * Starts a write inside `ex`'s transaction: takes the version lock (PostgreSQL) and returns the
   * next version, one more than the store's. Reading the newest change costs no counter update
   * when changes are logged (pruning never removes the newest).
   */
  async begin(ex: Executor): Promise<number> {
    // Most writes are small: skip even the no-op await where the engine needs no lock (SQLite).
    if (ex.dialect.advisoryLocks) await takeTransactionLock(ex, this.#lock);
    return (await currentVersion(ex)) + 1;
  }

  /**
   * Records `drafts` (in version order) in the same transaction and returns them as events: an
   * append to the log, or, unlogged, the counter moved to the last version.
   */
  async record(ex: Executor, drafts: readonly ChangeDraft[], now: number): Promise<StateEvent[]> {
    if (this.logged) return appendChanges(ex, drafts, now);
    const last = drafts[drafts.length - 1];
    if (last !== undefined) await ex.run(ADVANCE_UNLOGGED, [last.version]);
    return drafts.map((d) => toEvent(d, now));
  }
}

/** The store's current version (the highest version given to a committed change). */
export async function currentVersion(ex: Executor): Promise<number> {
  const row = await ex.get<{ version: number | string | null }>(CURRENT_VERSION);
  return Number(row?.version ?? 0);
}

/** Appends `drafts` to the change log and returns them as events. */
async function appendChanges(ex: Executor, drafts: readonly ChangeDraft[], now: number): Promise<StateEvent[]> {
  const events = drafts.map((d) => toEvent(d, now));
  for (let i = 0; i < events.length; i += 200) {
    const chunk = events.slice(i, i + 200);
    const params: (string | number | null)[] = [];
    const rows = chunk.map((e) => {
      const n = params.length;
      params.push(e.version, e.type, e.group, e.key, e.value ?? null, now);
      return `($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, $${n + 6})`;
    });
    await ex.run(
      `INSERT INTO state_changes (version, change_type, group_name, entry_key, entry_value, changed_at) VALUES ${rows.join(", ")}`,
      params,
    );
  }
  return events;
}

function toEvent(d: ChangeDraft, timestamp: number): StateEvent {
  const { type, group, key, version } = d;
  return d.value === undefined
    ? { type, group, key, timestamp, version }
    : { type, group, key, value: d.value, timestamp, version };
}

/** Changes after `after` matching `filter`, oldest first; see {@link ChangesSince}. */
export async function readChanges(
  ex: Executor,
  after: number,
  filter: ChangeFilter,
  limit: number,
  likePrefix: (prefix: string) => string,
): Promise<ChangesSince> {
  return ex.transaction(
    async (tx) => {
      const meta = await tx.get<{ pruned_through: number | string }>(
        "SELECT pruned_through FROM state_version WHERE id = 1",
      );
      const version = await currentVersion(tx);
      if (after < Number(meta?.pruned_through ?? 0) || after > version) {
        return { changes: [], reset: true, version, more: false };
      }
      const params: (string | number)[] = [after, limit + 1];
      let where = "version > $1";
      if (filter.group !== undefined) {
        params.push(filter.group);
        where += ` AND group_name = $${params.length}`;
      }
      if (filter.groupPrefix !== undefined && filter.groupPrefix !== "") {
        params.push(likePrefix(filter.groupPrefix));
        where += ` AND group_name LIKE $${params.length} ESCAPE '\\'`;
      }
      const rows = await tx.all<ChangeRow>(
        "SELECT version, change_type, group_name, entry_key, entry_value, changed_at FROM state_changes " +
          `WHERE ${where} ORDER BY version LIMIT $2`,
        params,
      );
      const more = rows.length > limit;
      const changes = rows.slice(0, limit).map((r) =>
        toEvent(
          {
            type: r.change_type,
            group: r.group_name,
            key: r.entry_key,
            version: Number(r.version),
            ...(r.entry_value === null ? {} : { value: r.entry_value }),
          },
          Number(r.changed_at),
        ),
      );
      return { changes, reset: false, version, more };
    },
    { readOnly: true, isolation: "repeatable read" },
  );
}

/**
 * Drops changes made before `before` (ms), except the newest change (it anchors the version),
 * and remembers the highest version dropped, so a reader asking for older versions learns it
 * must reload. Versions follow time, so the boundary is found by binary search on the primary
 * key instead of an index on the timestamp every write would have to maintain. Returns how many
 * changes were dropped.
 */
export async function pruneChanges(ex: Executor, before: number): Promise<number> {
  const bounds = await ex.get<{ lo: number | string | null; hi: number | string | null }>(
    "SELECT MIN(version) AS lo, MAX(version) AS hi FROM state_changes",
  );
  if (bounds?.lo === null || bounds?.lo === undefined || bounds.hi === null) return 0;
  let lo = Number(bounds.lo);
  let hi = Number(bounds.hi) - 1;
  let through = lo - 1;
  const changedAt = async (v: number) =>
    (
      await ex.get<{ at: number | string }>(
        "SELECT changed_at AS at FROM state_changes WHERE version >= $1 ORDER BY version LIMIT 1",
        [v],
      )
    )?.at;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const at = await changedAt(mid);
    if (at !== undefined && Number(at) < before) {
      through = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (through < Number(bounds.lo)) return 0;
  return ex.transaction(async (tx) => {
    const { changes } = await tx.run("DELETE FROM state_changes WHERE version <= $1", [through]);
    await tx.run("UPDATE state_version SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1", [through]);
    return changes;
  });
}
