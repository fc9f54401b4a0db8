import { type Clock, systemClock } from "../clock.js";
import { AccessDeniedError, ClaimNotFoundError, InvalidArgumentError } from "../errors.js";
import { clockOption, databaseOption } from "../internal/option-checks.js";
import type { Executor } from "../sql/index.js";
import type { DeleteQueue } from "./delete-queue.js";
import { appendEvent } from "./outbox.js";
import { chunks, placeholders } from "./sql-lists.js";
import {
  CLAIM_COLUMNS,
  type ClaimRow,
  type ClaimStatus,
  claimFromRow,
  type NewUploadClaim,
  type UploadClaim,
} from "./upload-claim.js";
import type { UploadsCallOptions } from "./uploads-call-options.js";

/** Options of {@link ClaimStore.listByOwner}. */
export interface ListClaimsOptions extends UploadsCallOptions {
  /** Only claims whose object key starts with this. Default `""` (all). */
  prefix?: string;
  /** Continue after this object key (the previous page's `cursor`). */
  cursor?: string;
  /** Claims per page, 1..1000. Default 100. */
  limit?: number;
}

/** One page of {@link ClaimStore.listByOwner}, ordered by object key; `cursor` is absent on the last page. */
export interface ClaimPage {
  readonly claims: readonly UploadClaim[];
  readonly cursor?: string;
}

/** Options of {@link ClaimStore}. */
export interface ClaimStoreOptions {
  /** Database migrated with `uploadsMigrations` (SQLite or PostgreSQL). Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** Timestamps of outbox events. Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Upload claims: one row per upload not yet adopted by business code. Safe for concurrent use.
 * Methods that business code calls in its own transaction take `{ executor }`.
 *
 * @example
 * ```ts
 * const claims = new ClaimStore({ database: db });
 * await db.transaction(async (tx) => {
 *   await tx.run("UPDATE users SET avatar = $1 WHERE id = $2", [key, userId]);
 *   await claims.consumeMany([key], userId, { executor: tx }); // ClaimNotFoundError -> rolls back
 * });
 * ```
 */
export class ClaimStore {
  readonly #db: Executor;
  readonly #clock: Clock;

  constructor(options: ClaimStoreOptions) {
    this.#db = databaseOption(options, "claims.create");
    this.#clock = clockOption(options.clock, "claims.create", systemClock);
  }

  /**
   * Inserts a new `pending` claim. A claim with the same id or key -> {@link UniqueViolationError}.
   */
  async create(claim: NewUploadClaim, options: UploadsCallOptions = {}): Promise<UploadClaim> {
    const row = await (options.executor ?? this.#db).get<ClaimRow>(
      `INSERT INTO storeroom_upload_claims (${CLAIM_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12) RETURNING ${CLAIM_COLUMNS}`,
      [
        claim.id,
        claim.createdAt,
        claim.createdBy,
        claim.key,
        claim.uploadId ?? "",
        claim.size,
        claim.contentType,
        claim.originalFilename,
        claim.public ? 1 : 0,
        claim.partSize,
        claim.partCount,
        claim.expiresAt,
      ],
    );
    return claimFromRow(row as ClaimRow);
  }

  /** Attaches the backend multipart session. No claim with `id` -> {@link ClaimNotFoundError}. */
  async updateUploadId(id: string, uploadId: string, options: UploadsCallOptions = {}): Promise<void> {
    const { changes } = await (options.executor ?? this.#db).run(
      "UPDATE storeroom_upload_claims SET upload_id = $1 WHERE id = $2",
      [uploadId, id],
    );
    if (changes === 0) throw new ClaimNotFoundError(`claim ${id} not found`, { op: "claims.updateUploadId" });
  }

  /** Flips a `pending` claim to `uploaded`. No pending claim with `id` -> {@link ClaimNotFoundError}. */
  async markUploaded(id: string, options: UploadsCallOptions = {}): Promise<void> {
    const { changes } = await (options.executor ?? this.#db).run(
      "UPDATE storeroom_upload_claims SET status = 'uploaded' WHERE id = $1 AND status = 'pending'",
      [id],
    );
    if (changes === 0) throw new ClaimNotFoundError(`no pending claim ${id}`, { op: "claims.markUploaded" });
  }

  /** The claim with `id`, or {@link ClaimNotFoundError}. */
  async get(id: string, options: UploadsCallOptions = {}): Promise<UploadClaim> {
    const row = await (options.executor ?? this.#db).get<ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM storeroom_upload_claims WHERE id = $1`,
      [id],
    );
    if (row === undefined) throw new ClaimNotFoundError(`claim ${id} not found`, { op: "claims.get" });
    return claimFromRow(row);
  }

  /** The claim of object `key`, or {@link ClaimNotFoundError}. */
  async getByKey(key: string, options: UploadsCallOptions = {}): Promise<UploadClaim> {
    const row = await (options.executor ?? this.#db).get<ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM storeroom_upload_claims WHERE object_key = $1`,
      [key],
    );
    if (row === undefined) throw new ClaimNotFoundError(`no claim for key ${key}`, { op: "claims.getByKey" });
    return claimFromRow(row);
  }

  /** Keys among `keys` that have a claim in any state (used by reconcile). */
  async existingKeys(keys: readonly string[], options: UploadsCallOptions = {}): Promise<Set<string>> {
    const found = new Set<string>();
    for (const part of chunks([...new Set(keys)])) {
      const rows = await (options.executor ?? this.#db).all<{ object_key: string }>(
        `SELECT object_key FROM storeroom_upload_claims WHERE object_key IN (${placeholders(part.length)})`,
        part,
      );
      for (const r of rows) found.add(r.object_key);
    }
    return found;
  }

  /**
   * The claims of `owner` in `status`, ordered by object key, a page at a time. A `limit`
   * outside 1..1000 -> {@link InvalidArgumentError}.
   */
  async listByOwner(owner: string, status: ClaimStatus, options: ListClaimsOptions = {}): Promise<ClaimPage> {
    return this.#list("created_by = $1", owner, status, options, "claims.listByOwner", false);
  }

  /**
   * Like {@link listByOwner} for every owner whose id starts with `ownerPrefix` (an org's
   * tenants: `"acme/"`), ordered by object key; each claim's `createdBy` names its owner.
   */
  async listByOwnerPrefix(
    ownerPrefix: string,
    status: ClaimStatus,
    options: ListClaimsOptions = {},
  ): Promise<ClaimPage> {
    return this.#list("substr(created_by, 1, $7) = $1", ownerPrefix, status, options, "claims.listByOwnerPrefix");
  }

  async #list(
    ownerCondition: string,
    owner: string,
    status: ClaimStatus,
    options: ListClaimsOptions,
    op: string,
    ownerIsPrefix = true,
  ): Promise<ClaimPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`limit must be an integer in 1..1000, got ${limit}`, { op });
    }
    const prefix = options.prefix ?? "";
    const rows = await (options.executor ?? this.#db).all<ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM storeroom_upload_claims
       WHERE ${ownerCondition} AND status = $2 AND object_key > $3 AND substr(object_key, 1, $4) = $5
       ORDER BY object_key LIMIT $6`,
      [owner, status, options.cursor ?? "", prefix.length, prefix, limit + 1, ...(ownerIsPrefix ? [owner.length] : [])],
    );
    const claims = rows.slice(0, limit).map(claimFromRow);
    const last = claims.at(-1);
    return rows.length > limit && last !== undefined ? { claims, cursor: last.key } : { claims };
  }

  /**
   * Gives up an uploaded object without adopting it: deletes the `uploaded` claim of `key`
   * owned by `owner` and queues the object for deletion (reason `deleted`; the delete worker
   * then writes `file.deleted`), in one transaction. No such claim (missing, pending or
   * someone else's, indistinguishable on purpose) -> {@link ClaimNotFoundError}, nothing changed.
   */
  async release(key: string, owner: string, queue: DeleteQueue, options: UploadsCallOptions = {}): Promise<void> {
    await (options.executor ?? this.#db).transaction(async (tx) => {
      const { changes } = await tx.run(
        "DELETE FROM storeroom_upload_claims WHERE object_key = $1 AND created_by = $2 AND status = 'uploaded'",
        [key, owner],
      );
      if (changes === 0) throw new ClaimNotFoundError(`no uploaded file ${key} of ${owner}`, { op: "claims.release" });
      await queue.schedule([key], "deleted", { executor: tx, owner });
    });
  }

  /** Number of `pending` claims of every owner (unfinished uploads; a queue depth for metrics). */
  async countPending(options: UploadsCallOptions = {}): Promise<number> {
    const row = await (options.executor ?? this.#db).get<{ n: number | string }>(
      "SELECT count(*) AS n FROM storeroom_upload_claims WHERE status = 'pending'",
    );
    return Number(row?.n ?? 0);
  }

  /** Number of `pending` claims owned by `owner` (the per-user in-flight cap). */
  async countPendingByOwner(owner: string, options: UploadsCallOptions = {}): Promise<number> {
    const row = await (options.executor ?? this.#db).get<{ n: number }>(
      "SELECT count(*) AS n FROM storeroom_upload_claims WHERE created_by = $1 AND status = 'pending'",
      [owner],
    );
    return Number(row?.n ?? 0);
  }

  /** Consumes one key; see {@link ClaimStore.consumeMany}. */
  async consume(key: string, owner: string, options: UploadsCallOptions = {}): Promise<void> {
    await this.consumeMany([key], owner, options);
  }

  /**
   * Adopts uploaded objects: deletes the `uploaded` claims of `keys` owned by `owner` and writes
   * a `file.claimed` event per key, inside `executor` (your business transaction). Duplicate
   * keys count once; an empty list is a no-op. If any key has no claim, is still pending or
   * belongs to someone else (indistinguishable on purpose) -> {@link ClaimNotFoundError} and
   * nothing is consumed: roll your transaction back. An empty owner -> {@link AccessDeniedError}.
   */
  async consumeMany(keys: readonly string[], owner: string, options: UploadsCallOptions = {}): Promise<void> {
    if (typeof owner !== "string" || owner === "") {
      throw new AccessDeniedError("consuming upload claims needs an owner", { op: "claims.consumeMany" });
    }
    const unique = [...new Set(keys)];
    if (unique.some((k) => typeof k !== "string" || k === "")) {
      throw new InvalidArgumentError("claim keys must be non-empty strings", { op: "claims.consumeMany" });
    }
    if (unique.length === 0) return;
    await (options.executor ?? this.#db).transaction(async (tx) => {
      let matched = 0;
      // Deleted in one sorted order in every transaction: on PostgreSQL two calls locking the
      // same rows chunk by chunk in different orders would deadlock.
      for (const part of chunks([...unique].sort())) {
        const { changes } = await tx.run(
          `DELETE FROM storeroom_upload_claims
           WHERE status = 'uploaded' AND created_by = $1 AND object_key IN (${placeholders(part.length, 2)})`,
          [owner, ...part],
        );
        matched += changes;
      }
      if (matched !== unique.length) {
        throw new ClaimNotFoundError(`matched ${matched} of ${unique.length} upload claims`, {
          op: "claims.consumeMany",
        });
      }
      const now = this.#clock.now();
      for (const fileKey of unique)
        await appendEvent({ topic: "file.claimed", payload: { fileKey, owner } }, { executor: tx, now });
    });
  }

  /**
   * Up to `limit` `pending` claims expired at `now` (`expiresAt <= now`, the moment `UploadService`
   * refuses them too), oldest first. Uploaded claims are never returned.
   */
  async scanExpired(now: number, limit: number, options: UploadsCallOptions = {}): Promise<UploadClaim[]> {
    const rows = await (options.executor ?? this.#db).all<ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM storeroom_upload_claims
       WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`,
      [now, positiveLimit(limit)],
    );
    return rows.map(claimFromRow);
  }

  /**
   * Like {@link ClaimStore.scanExpired}, but locks the rows for the rest of `executor`'s
   * transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's writer lock already excludes
   * others), so a concurrent `completeUpload` cannot flip or delete them meanwhile.
   */
  async lockExpired(
    now: number,
    limit: number,
    options: UploadsCallOptions & { executor: Executor },
  ): Promise<UploadClaim[]> {
    const rows = await options.executor.all<ClaimRow>(
      `SELECT ${CLAIM_COLUMNS} FROM storeroom_upload_claims
       WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2${options.executor.dialect.skipLocked}`,
      [now, positiveLimit(limit)],
    );
    return rows.map(claimFromRow);
  }

  /** Deletes one claim (its parts cascade). Missing -> {@link ClaimNotFoundError}. */
  async deleteById(id: string, options: UploadsCallOptions = {}): Promise<void> {
    const { changes } = await (options.executor ?? this.#db).run("DELETE FROM storeroom_upload_claims WHERE id = $1", [
      id,
    ]);
    if (changes === 0) throw new ClaimNotFoundError(`claim ${id} not found`, { op: "claims.deleteById" });
  }

  /** Deletes claims by id (parts cascade); ids that do not exist are ignored. Returns how many were deleted. */
  async deleteByIds(ids: readonly string[], options: UploadsCallOptions = {}): Promise<number> {
    let deleted = 0;
    for (const part of chunks([...new Set(ids)])) {
      const { changes } = await (options.executor ?? this.#db).run(
        `DELETE FROM storeroom_upload_claims WHERE id IN (${placeholders(part.length)})`,
        part,
      );
      deleted += changes;
    }
    return deleted;
  }
}

function positiveLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit <= 0)
    throw new InvalidArgumentError(`limit must be a positive integer, got ${limit}`);
  return limit;
}
