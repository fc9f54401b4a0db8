import { type Clock, systemClock } from "../clock.js";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import { clockOption, databaseOption } from "../internal/option-checks.js";
import { assertObjectKey } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { appendEvent } from "./outbox.js";
import {
  DELETE_REASONS,
  type DeadLetter,
  type DeleteReason,
  type PendingDelete,
  type PendingDeleteInput,
} from "./pending-delete.js";
import { chunks, placeholders, sortableId } from "./sql-lists.js";
import type { UploadsCallOptions } from "./uploads-call-options.js";

/** Options of {@link DeleteQueue}. */
export interface DeleteQueueOptions {
  /** Database migrated with `uploadsMigrations`. Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** "Now" of `schedule`/`enqueue` and of events. Default {@link systemClock}. */
  clock?: Clock;
}

/** Options of {@link DeleteQueue.schedule}. */
export interface ScheduleOptions extends UploadsCallOptions {
  /** Who the objects belong to, carried into their `file.deleted` events. Default `""` (unknown). */
  owner?: string;
}

/** Options of {@link DeleteQueue.deadLetter}. */
export interface DeadLetterOptions extends UploadsCallOptions {
  lastError: string;
  /** `access_denied`, `not_found` or `transient`. */
  errorClass: string;
}

interface PendingRow {
  id: string;
  object_key: string;
  upload_id: string;
  reason: DeleteReason;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  last_error: string;
  owner: string;
}

const COLUMNS = "id, object_key, upload_id, reason, attempts, next_attempt_at, created_at, last_error, owner";

function fromRow(r: PendingRow): PendingDelete {
  return {
    id: r.id,
    key: r.object_key,
    uploadId: r.upload_id,
    reason: r.reason,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
    lastError: r.last_error,
    owner: r.owner,
  };
}

/**
 * The durable queue of objects to delete. Business code `schedule`s keys inside its own
 * transaction; the {@link DeleteWorker} `lease`s due rows (made invisible to other workers
 * for the lease, with `FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent workers take
 * disjoint rows), then calls `done`, `defer` or `deadLetter`. A crashed worker's rows come
 * back when their lease ends.
 *
 * @example
 * ```ts
 * const queue = new DeleteQueue({ database: db });
 * await db.transaction(async (tx) => {
 *   await tx.run("DELETE FROM posts WHERE id = $1", [postId]);
 *   await queue.schedule([coverKey], "deleted", { executor: tx });
 * });
 * ```
 */
export class DeleteQueue {
  readonly #db: Executor;
  readonly #clock: Clock;

  constructor(options: DeleteQueueOptions) {
    this.#db = databaseOption(options, "deleteQueue.create");
    this.#clock = clockOption(options.clock, "deleteQueue.create", systemClock);
  }

  /**
   * Queues `keys` for deletion with `reason`, due now. Idempotent on (key, reason): a key
   * already queued for that reason keeps its single row. Duplicate keys count once; an empty
   * list is a no-op. Returns how many rows were inserted. `keys` not an array (a lone key),
   * an empty key or an unknown reason -> {@link InvalidArgumentError}; a key that is no valid
   * object key -> {@link InvalidKeyError}; nothing inserted.
   */
  async schedule(keys: readonly string[], reason: DeleteReason, options: ScheduleOptions = {}): Promise<number> {
    const owner = options.owner ?? "";
    listOf(keys, "keys", "deleteQueue.schedule");
    return this.enqueue(
      [...new Set(keys)].map((key) => ({ key, reason, owner })),
      options.executor === undefined ? {} : { executor: options.executor },
    );
  }

  /**
   * Inserts fully-formed rows (the claim sweeper uses it to carry the multipart upload id).
   * Rows whose (key, reason) is already queued are skipped. Returns how many were inserted.
   * `items` not an array, an empty key or an unknown reason -> {@link InvalidArgumentError}; a
   * key that is no valid object key -> {@link InvalidKeyError}; nothing inserted.
   */
  async enqueue(items: readonly PendingDeleteInput[], options: UploadsCallOptions = {}): Promise<number> {
    listOf(items, "items", "deleteQueue.enqueue");
    for (const item of items) {
      if (typeof item?.key !== "string" || item.key === "") {
        throw new InvalidArgumentError("a pending delete needs a non-empty key", { op: "deleteQueue.enqueue" });
      }
      // A key no object store accepts could never be deleted, only retried until dead-lettered.
      assertObjectKey(item.key, "deleteQueue.enqueue");
      if (!DELETE_REASONS.includes(item.reason)) {
        throw new InvalidArgumentError(`unknown delete reason ${String(item.reason)}`, { op: "deleteQueue.enqueue" });
      }
    }
    if (items.length === 0) return 0;
    const now = this.#clock.now();
    return (options.executor ?? this.#db).transaction(async (tx) => {
      let inserted = 0;
      // One order of (key, reason) in every transaction: on PostgreSQL an insert waits for a
      // concurrent one of the same pair, and two transactions in different orders would deadlock.
      const ordered = items.length > 1 ? [...items].sort(byKeyAndReason) : items;
      for (const part of chunks(ordered, 100)) {
        const values: (string | number)[] = [];
        const rows = part.map((item, i) => {
          values.push(
            sortableId(now),
            item.key,
            item.uploadId ?? "",
            item.reason,
            item.nextAttemptAt ?? now,
            now,
            item.owner ?? "",
          );
          const b = i * 7;
          return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`;
        });
        const { changes } = await tx.run(
          `INSERT INTO storeroom_pending_deletes (id, object_key, upload_id, reason, next_attempt_at, created_at, owner)
           VALUES ${rows.join(", ")} ON CONFLICT (object_key, reason) DO NOTHING`,
          values,
        );
        inserted += changes;
      }
      return inserted;
    });
  }

  /**
   * Leases up to `limit` rows due at `now` (oldest due first): pushes their `nextAttemptAt`
   * to `now + leaseMs` in the same statement, so no other lease returns them until that time
   * unless {@link DeleteQueue.defer} moves them. Returned rows show the new `nextAttemptAt`.
   * `now` not an integer, `limit` not a positive integer or `leaseMs` not positive ->
   * {@link InvalidArgumentError}.
   */
  async lease(now: number, limit: number, leaseMs: number): Promise<PendingDelete[]> {
    const op = "deleteQueue.lease";
    if (!Number.isSafeInteger(now)) throw new InvalidArgumentError(`now must be a time in ms, got ${now}`, { op });
    if (!Number.isInteger(limit) || limit <= 0)
      throw new InvalidArgumentError(`limit must be a positive integer, got ${limit}`, { op });
    if (!Number.isFinite(leaseMs) || leaseMs <= 0)
      throw new InvalidArgumentError(`leaseMs must be positive, got ${leaseMs}`, { op });
    const rows = await this.#db.transaction((tx) =>
      tx.all<PendingRow>(
        // A materialized CTE picks (and on PostgreSQL locks) the rows once: a subquery under
        // IN may be evaluated again while the update runs and pick further rows.
        `WITH picked AS MATERIALIZED (
           SELECT id FROM storeroom_pending_deletes WHERE next_attempt_at <= $2
           ORDER BY next_attempt_at, id LIMIT $3${tx.dialect.skipLocked})
         UPDATE storeroom_pending_deletes SET next_attempt_at = $1
         WHERE id IN (SELECT id FROM picked)
         RETURNING ${COLUMNS}`,
        [now + leaseMs, now, limit],
      ),
    );
    return rows.map(fromRow).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /**
   * Removes finished rows; unknown ids are ignored, an empty list is a no-op. Returns how many
   * were removed. `ids` not an array -> {@link InvalidArgumentError}.
   */
  async done(ids: readonly string[], options: UploadsCallOptions = {}): Promise<number> {
    listOf(ids, "ids", "deleteQueue.done");
    let removed = 0;
    for (const part of chunks([...new Set(ids)])) {
      const { changes } = await (options.executor ?? this.#db).run(
        `DELETE FROM storeroom_pending_deletes WHERE id IN (${placeholders(part.length)})`,
        part,
      );
      removed += changes;
    }
    return removed;
  }

  /**
   * Records a failed attempt: `attempts + 1`, due again at `nextAt`, and `lastError`.
   * A missing row -> {@link NotFoundError}; `nextAt` not an integer -> {@link InvalidArgumentError}.
   */
  async defer(id: string, nextAt: number, options: UploadsCallOptions & { lastError?: string } = {}): Promise<void> {
    if (!Number.isSafeInteger(nextAt)) {
      throw new InvalidArgumentError(`nextAt must be a time in ms, got ${nextAt}`, { op: "deleteQueue.defer" });
    }
    const { changes } = await (options.executor ?? this.#db).run(
      "UPDATE storeroom_pending_deletes SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
      [nextAt, options.lastError ?? "", id],
    );
    if (changes === 0) throw new NotFoundError(`pending delete ${id} not found`, { op: "deleteQueue.defer" });
  }

  /**
   * Retires a row for good: moves it to the dead-letter table (attempts + 1) and writes a
   * `delete.dead_letter` event, in one transaction. It is never leased again. A missing row
   * -> {@link NotFoundError}.
   */
  async deadLetter(id: string, options: DeadLetterOptions): Promise<DeadLetter> {
    const now = this.#clock.now();
    return (options.executor ?? this.#db).transaction(async (tx) => {
      const row = await tx.get<PendingRow>(`DELETE FROM storeroom_pending_deletes WHERE id = $1 RETURNING ${COLUMNS}`, [
        id,
      ]);
      if (row === undefined)
        throw new NotFoundError(`pending delete ${id} not found`, { op: "deleteQueue.deadLetter" });
      const dead: DeadLetter = {
        id: row.id,
        key: row.object_key,
        uploadId: row.upload_id,
        reason: row.reason,
        attempts: row.attempts + 1,
        lastError: options.lastError,
        errorClass: options.errorClass,
        createdAt: row.created_at,
        deadAt: now,
        owner: row.owner,
      };
      await tx.run(
        `INSERT INTO storeroom_delete_dead_letters
         (id, object_key, upload_id, reason, attempts, last_error, error_class, created_at, dead_at, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          dead.id,
          dead.key,
          dead.uploadId,
          dead.reason,
          dead.attempts,
          dead.lastError,
          dead.errorClass,
          dead.createdAt,
          now,
          dead.owner,
        ],
      );
      await appendEvent(
        {
          topic: "delete.dead_letter",
          payload: {
            pendingDeleteId: dead.id,
            fileKey: dead.key,
            reason: dead.reason,
            attempts: dead.attempts,
            lastError: dead.lastError,
            errorClass: dead.errorClass,
            owner: dead.owner,
          },
        },
        { executor: tx, now },
      );
      return dead;
    });
  }

  /** One dead letter by id, or `undefined`. */
  async getDeadLetter(id: string): Promise<DeadLetter | undefined> {
    return (await this.#deadLetterRows("WHERE id = $1", [id]))[0];
  }

  /**
   * Puts a dead letter back in the queue, due now with no attempts, so the next worker run
   * tries the delete again; in one transaction. Returns the queued row. A missing dead letter
   * -> {@link NotFoundError}, nothing changed.
   */
  async retryDeadLetter(id: string, options: UploadsCallOptions = {}): Promise<PendingDelete> {
    const now = this.#clock.now();
    return (options.executor ?? this.#db).transaction(async (tx) => {
      const dead = await tx.get<{ object_key: string; upload_id: string; reason: DeleteReason; owner: string }>(
        "DELETE FROM storeroom_delete_dead_letters WHERE id = $1 RETURNING object_key, upload_id, reason, owner",
        [id],
      );
      if (dead === undefined) {
        throw new NotFoundError(`dead letter ${id} not found`, { op: "deleteQueue.retryDeadLetter" });
      }
      const row = await tx.get<PendingRow>(
        `INSERT INTO storeroom_pending_deletes (id, object_key, upload_id, reason, next_attempt_at, created_at, owner)
         VALUES ($1, $2, $3, $4, $5, $5, $6)
         ON CONFLICT (object_key, reason) DO UPDATE SET next_attempt_at = $5
         RETURNING ${COLUMNS}`,
        [sortableId(now), dead.object_key, dead.upload_id, dead.reason, now, dead.owner],
      );
      return fromRow(row as PendingRow);
    });
  }

  /** Forgets a dead letter for good (its object, if any, stays in storage). A missing one -> {@link NotFoundError}. */
  async dropDeadLetter(id: string, options: UploadsCallOptions = {}): Promise<void> {
    const { changes } = await (options.executor ?? this.#db).run(
      "DELETE FROM storeroom_delete_dead_letters WHERE id = $1",
      [id],
    );
    if (changes === 0) throw new NotFoundError(`dead letter ${id} not found`, { op: "deleteQueue.dropDeadLetter" });
  }

  /** One row by id, or `undefined`. */
  async get(id: string): Promise<PendingDelete | undefined> {
    const row = await this.#db.get<PendingRow>(`SELECT ${COLUMNS} FROM storeroom_pending_deletes WHERE id = $1`, [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Rows in the queue (leased or not), by creation time; for inspection and tests. */
  async list(limit = 1000): Promise<PendingDelete[]> {
    const rows = await this.#db.all<PendingRow>(
      `SELECT ${COLUMNS} FROM storeroom_pending_deletes ORDER BY created_at, id LIMIT $1`,
      [limit],
    );
    return rows.map(fromRow);
  }

  /** Keys among `keys` that are queued for deletion for any reason. */
  async queuedKeys(keys: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks([...new Set(keys)])) {
      const rows = await this.#db.all<{ object_key: string }>(
        `SELECT DISTINCT object_key FROM storeroom_pending_deletes WHERE object_key IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) found.add(r.object_key);
    }
    return found;
  }

  /** Number of rows in the queue. */
  async count(): Promise<number> {
    const row = await this.#db.get<{ n: number }>("SELECT count(*) AS n FROM storeroom_pending_deletes");
    return Number(row?.n ?? 0);
  }

  /** Retired rows, newest first. */
  async deadLetters(limit = 1000): Promise<DeadLetter[]> {
    return this.#deadLetterRows("ORDER BY dead_at DESC, id LIMIT $1", [limit]);
  }

  async #deadLetterRows(rest: string, params: (string | number)[]): Promise<DeadLetter[]> {
    const rows = await this.#db.all<{
      id: string;
      object_key: string;
      upload_id: string;
      reason: DeleteReason;
      attempts: number;
      last_error: string;
      error_class: string;
      created_at: number;
      dead_at: number;
      owner: string;
    }>(
      `SELECT id, object_key, upload_id, reason, attempts, last_error, error_class, created_at, dead_at, owner
       FROM storeroom_delete_dead_letters ${rest}`,
      params,
    );
    return rows.map((r) => ({
      id: r.id,
      key: r.object_key,
      uploadId: r.upload_id,
      reason: r.reason,
      attempts: Number(r.attempts),
      lastError: r.last_error,
      errorClass: r.error_class,
      createdAt: Number(r.created_at),
      deadAt: Number(r.dead_at),
      owner: r.owner,
    }));
  }
}

function byKeyAndReason(a: PendingDeleteInput, b: PendingDeleteInput): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0;
}

/** Throws {@link InvalidArgumentError} unless `value` is an array: a lone string would read as the list of its characters. */
function listOf(value: unknown, name: string, op: string): void {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${name} must be an array`, { op });
}
