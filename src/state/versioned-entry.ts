/** One live entry with its version, as {@link EntryOperations.getEntry} and {@link EntryOperations.getEntries} return it. */
export interface StateEntry {
  readonly group: string;
  readonly key: string;
  readonly value: string;
  /**
   * The store version of the entry's last change (a "versionstamp"): versions grow strictly
   * with every change in the store, so a changed entry always has a new one. Use it with
   * `ifVersion` and batch checks.
   */
  readonly version: number;
  /** When the entry expires (ms on the store's clock), or `null` without a TTL. */
  readonly expiresAt: number | null;
}

/** Options of {@link EntryOperations.set}. */
export interface SetOptions {
  /**
   * Write only if the entry is at this version (a number from {@link StateEntry.version}), or
   * only if it is absent or expired (`null`). Otherwise nothing is written and
   * {@link VersionConflictError} is thrown. Default: write unconditionally.
   */
  ifVersion?: number | null;
  /** Expire the entry this many ms from now (a positive number). Default: no expiry (clears a TTL). */
  ttlMs?: number;
}

/** Options of {@link EntryOperations.delete}. */
export interface DeleteOptions {
  /** Delete only if the entry is at this version, or (`null`) only if it is absent; see {@link SetOptions.ifVersion}. */
  ifVersion?: number | null;
}

/** One write of {@link EntryOperations.batch}. */
export type BatchOperation =
  | {
      readonly type: "set";
      readonly group: string;
      readonly key: string;
      readonly value: string;
      readonly ttlMs?: number;
    }
  | { readonly type: "delete"; readonly group: string; readonly key: string };

/** A precondition of {@link EntryOperations.batch}: the entry is at `version`, or absent when `version` is `null`. */
export interface VersionCheck {
  readonly group: string;
  readonly key: string;
  readonly version: number | null;
}

/** Options of {@link EntryOperations.batch}. */
export interface BatchOptions {
  /** Checked before anything is written; any failure aborts the whole batch with {@link VersionConflictError}. */
  checks?: readonly VersionCheck[];
}

/** What {@link EntryOperations.batch} did. */
export interface BatchResult {
  /** Per operation, the version it wrote, or `null` for a delete that found nothing. */
  readonly versions: readonly (number | null)[];
  /** The highest version the batch wrote (its commit version), or `null` when it changed nothing. */
  readonly version: number | null;
}

/** Options of {@link EntryOperations.getEntries}. */
export interface GetEntriesOptions {
  /** Only keys starting with this prefix (literally). Default `""` (all). */
  keyPrefix?: string;
  /** Entries to skip. Default 0. */
  offset?: number;
  /** At most this many. Default 100. */
  limit?: number;
}
