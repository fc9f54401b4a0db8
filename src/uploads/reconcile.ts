import { type Clock, systemClock } from "../clock.js";
import { InvalidArgumentError, isStoreError } from "../errors.js";
import {
  booleanOption,
  clockOption,
  databaseOption,
  functionOption,
  objectOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectInfo, ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { ClaimStore } from "./claim-store.js";
import { DeleteQueue } from "./delete-queue.js";

/**
 * Where business data references files. storeroom does not know your tables, so you supply
 * the lookup (the uploads module keeps no reference table of its own).
 *
 * @example
 * ```ts
 * const references: ReferenceSource = {
 *   async referencedKeys(keys) {
 *     const rows = await db.all<{ cover: string }>(`SELECT cover FROM posts WHERE cover IN (${keys.map((_, i) => `$${i + 1}`)})`, keys);
 *     return new Set(rows.map((r) => r.cover));
 *   },
 *   async *allReferences() {
 *     for await (const row of db.iterate<{ cover: string }>("SELECT cover FROM posts")) yield row.cover;
 *   },
 * };
 * ```
 */
export interface ReferenceSource {
  /** Which of `keys` are referenced by business data. Throwing aborts the run; nothing is quarantined. */
  referencedKeys(keys: readonly string[]): Promise<ReadonlySet<string>>;
  /** Every referenced key, to find references whose object is missing. Omit it to skip that check. */
  allReferences?(): AsyncIterable<string>;
}

/** Options of {@link reconcile}. Numbers are positive integers. */
export interface ReconcileOptions {
  /** Database migrated with `uploadsMigrations`. Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  objects: ObjectStore;
  references: ReferenceSource;
  /** Default the system clock. */
  clock?: Clock;
  /** Report only, change nothing. Default `true`: pass `false` to quarantine. */
  dryRun?: boolean;
  /** Where orphans are moved before they are deleted. Default `"quarantine/"`; it is never scanned as live data. */
  quarantinePrefix?: string;
  /** Key prefixes holding uploads. Default `["pub/", "priv/"]`. */
  prefixes?: readonly string[];
  /** Most orphans handled (and dangling references reported) per run. Default 1000. */
  limit?: number;
  /** Objects younger than this are never orphans (an upload may be in flight). Default 1 h. */
  minAgeMs?: number;
  /** Quarantined copies older than this are deleted for good (not in a dry run). Default 7 days. */
  quarantineRetentionMs?: number;
  /**
   * Called after each listed page with the objects scanned so far (no total: the listing is
   * paged). For a progress bar; must not throw.
   */
  onProgress?: (done: number, total?: number) => void;
}

/** What {@link reconcile} found and did. */
export interface ReconcileResult {
  readonly dryRun: boolean;
  /** Objects listed under the upload prefixes. */
  readonly scanned: number;
  /** Objects with no claim, no reference and no queued delete. */
  readonly orphans: readonly string[];
  /** Orphans copied under the quarantine prefix and removed from their original key. */
  readonly quarantined: readonly string[];
  /** Quarantined copies that outlived the retention, queued for deletion (reason `reconcile`; the delete worker removes them). */
  readonly purged: readonly string[];
  /** Referenced keys whose object does not exist, also references that are no valid object key. */
  readonly danglingReferences: readonly string[];
}

/**
 * Finds what bookkeeping missed: objects that nothing owns (no claim, no reference, no queued
 * delete) and references whose object is gone. Orphans are quarantined (copied under
 * `quarantinePrefix`, then removed) rather than deleted, and purged only after
 * `quarantineRetentionMs` (through the delete queue, reason `reconcile`), so a wrong reference
 * source can be undone by copying back.
 * Claims are read before references: a business transaction that consumes a claim commits
 * the reference atomically, so an object is never seen with neither.
 *
 * @example
 * ```ts
 * const report = await reconcile({ database: db, objects, references }); // dry run
 * if (report.orphans.length > 0) await reconcile({ database: db, objects, references, dryRun: false });
 * ```
 */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileResult> {
  const op = "uploads.reconcile";
  const clock = clockOption(options.clock, op, systemClock);
  const dryRun = booleanOption(options.dryRun, "dryRun", op, true);
  const quarantinePrefix = options.quarantinePrefix ?? "quarantine/";
  if (typeof quarantinePrefix !== "string" || quarantinePrefix === "" || !quarantinePrefix.endsWith("/")) {
    throw new InvalidArgumentError("quarantinePrefix must be a non-empty folder ending in /", { op });
  }
  const prefixes = options.prefixes ?? ["pub/", "priv/"];
  if (!Array.isArray(prefixes) || prefixes.some((p) => typeof p !== "string")) {
    throw new InvalidArgumentError("prefixes must be an array of strings", { op });
  }
  if (prefixes.some((p) => p.startsWith(quarantinePrefix) || quarantinePrefix.startsWith(p))) {
    throw new InvalidArgumentError("quarantinePrefix must not overlap the scanned prefixes", { op });
  }
  const limit = positiveInteger(options.limit, "limit", op, 1000);
  const minAgeMs = positiveInteger(options.minAgeMs, "minAgeMs", op, 3_600_000);
  const retentionMs = positiveInteger(options.quarantineRetentionMs, "quarantineRetentionMs", op, 7 * 24 * 3_600_000);
  const database = databaseOption(options, op);
  objectStoreOption(options.objects, "objects", op);
  objectOption(options.references, "references", op, "a ReferenceSource", ["referencedKeys"]);
  if (options.references.allReferences !== undefined) {
    functionOption(options.references.allReferences, "references.allReferences", op, true);
  }
  functionOption(options.onProgress, "onProgress", op);
  const claims = new ClaimStore({ database, clock });
  const queue = new DeleteQueue({ database, clock });
  const now = clock.now();

  let scanned = 0;
  const orphans: string[] = [];
  for (const prefix of prefixes) {
    for await (const page of pages(options.objects, prefix)) {
      scanned += page.length;
      options.onProgress?.(scanned);
      const old = page.filter((o) => now - o.lastModified >= minAgeMs).map((o) => o.key);
      if (old.length === 0) continue;
      const claimed = await claims.existingKeys(old);
      const unclaimed = old.filter((k) => !claimed.has(k));
      if (unclaimed.length === 0) continue;
      const referenced = await options.references.referencedKeys(unclaimed);
      const queued = await queue.queuedKeys(unclaimed);
      for (const key of unclaimed) {
        if (!referenced.has(key) && !queued.has(key) && orphans.length < limit) orphans.push(key);
      }
      if (orphans.length >= limit) break;
    }
    if (orphans.length >= limit) break;
  }

  const quarantined: string[] = [];
  const purged: string[] = [];
  if (!dryRun) {
    for (const key of orphans) {
      await quarantine(options.objects, key, quarantinePrefix + key);
      quarantined.push(key);
    }
    for await (const page of pages(options.objects, quarantinePrefix)) {
      for (const o of page) {
        if (purged.length >= limit || now - o.lastModified < retentionMs) continue;
        purged.push(o.key);
      }
    }
    // Purged copies go through the delete queue (reason `reconcile`), so they are retried and reported like every delete.
    await queue.schedule(purged, "reconcile");
  }

  const danglingReferences: string[] = [];
  if (options.references.allReferences !== undefined) {
    for await (const key of options.references.allReferences()) {
      if (danglingReferences.length >= limit) break;
      if ((await headOrInvalid(options.objects, key)) === null) danglingReferences.push(key);
    }
  }
  return { dryRun, scanned, orphans, quarantined, purged, danglingReferences };
}

/** The object's metadata; `null` also for a reference that is no valid object key (it names no object). */
async function headOrInvalid(objects: ObjectStore, key: string): Promise<ObjectInfo | null> {
  try {
    return await objects.head(key);
  } catch (err) {
    if (isStoreError(err, "INVALID_KEY")) return null;
    throw err;
  }
}

async function quarantine(objects: ObjectStore, key: string, target: string): Promise<void> {
  const source = await objects.get(key);
  if (source === null) return;
  await objects.put(target, source.body, {
    contentLength: source.size,
    ...(source.contentType === undefined ? {} : { contentType: source.contentType }),
  });
  // Only remove the original once its copy is stored, so a failure leaves the object where it was.
  await objects.delete(key);
}

async function* pages(objects: ObjectStore, prefix: string): AsyncGenerator<ObjectInfo[]> {
  let cursor: string | undefined;
  do {
    const page = await objects.list(prefix, cursor === undefined ? { limit: 1000 } : { cursor, limit: 1000 });
    yield [...page.objects];
    cursor = page.cursor;
  } while (cursor !== undefined);
}
