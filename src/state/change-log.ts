import { type Executor, takeTransactionLock } from "../sql/index.js";
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

const VERSION_LOCK = { name: "storeroom.state.versions" };
/** The store version: the newest change in the log, or (before the first change) the floor kept in `state_version`. */
const CURRENT_VERSION =
  "SELECT COALESCE((SELECT MAX(version) FROM state_changes), (SELECT version FROM state_version WHERE id = 1)) AS version";

/**
 * Starts a write: takes the store's version lock and returns the next version. The lock is a
 * transaction-scoped advisory lock on PostgreSQL, so versions are given and committed in order
 * and version checks made after it see no concurrent writer; on SQLite the write transaction
 * already serialises writers and nothing runs. The version is one more than the newest change
 * in the log (pruning never removes the newest), so a write costs no counter update.
 */
export async function beginWrite(ex: Executor): Promise<number> {
  await takeTransactionLock(ex, VERSION_LOCK);
  return (await currentVersion(ex)) + 1;
}

/** The store's current version (the highest version given to a committed change). */
export async function currentVersion(ex: Executor): Promise<number> {
  const row = await ex.get<{ version: number | string | null }>(CURRENT_VERSION);
  return Number(row?.version ?? 0);
}

/** Appends `drafts` to the change log and returns them as events. */
export async function recordChanges(ex: Executor, drafts: readonly ChangeDraft[], now: number): Promise<StateEvent[]> {
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
