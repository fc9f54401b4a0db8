import type { Executor } from "../sql/index.js";
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
 * Reserves `count` versions and returns the first (a negative `count` gives back versions
 * reserved earlier in the same transaction). The `state_version` row it updates is the
 * store's write lock: on PostgreSQL every write transaction takes it first, so versions commit
 * in order and version checks see no concurrent writer; SQLite has one writer anyway.
 */
export async function reserveVersions(ex: Executor, count: number): Promise<number> {
  const row = await ex.get<{ version: number | string }>(
    "UPDATE state_version SET version = version + $1 WHERE id = 1 RETURNING version",
    [count],
  );
  return Number(row?.version) - count + 1;
}

/** The store's current version (the highest version given to a committed change). */
export async function currentVersion(ex: Executor): Promise<number> {
  const row = await ex.get<{ version: number | string }>("SELECT version FROM state_version WHERE id = 1");
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
      const meta = await tx.get<{ version: number | string; pruned_through: number | string }>(
        "SELECT version, pruned_through FROM state_version WHERE id = 1",
      );
      const version = Number(meta?.version ?? 0);
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
 * Drops changes made before `before` (ms) and remembers the highest version dropped, so a
 * reader asking for older versions learns it must reload. Returns how many were dropped.
 */
export async function pruneChanges(ex: Executor, before: number): Promise<number> {
  const edge = await ex.get<{ v: number | string | null }>(
    "SELECT MAX(version) AS v FROM state_changes WHERE changed_at < $1",
    [before],
  );
  if (edge?.v === null || edge?.v === undefined) return 0;
  const through = Number(edge.v);
  return ex.transaction(async (tx) => {
    const { changes } = await tx.run("DELETE FROM state_changes WHERE version <= $1", [through]);
    await tx.run("UPDATE state_version SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1", [through]);
    return changes;
  });
}
