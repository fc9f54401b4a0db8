import { type Clock, systemClock } from "../clock.js";
import { clockOption, databaseOption } from "../internal/option-checks.js";
import type { Executor } from "../sql/index.js";
import type { UploadsCallOptions } from "./uploads-call-options.js";

/** One recorded chunk of an in-flight upload (`storeroom_upload_parts`). */
export interface UploadPart {
  readonly claimId: string;
  /** 1-based. */
  readonly partNumber: number;
  /** The backend's etag; never taken from the client. */
  readonly etag: string;
  readonly size: number;
  readonly createdAt: number;
}

/** Options of {@link UploadPartStore}. */
export interface UploadPartStoreOptions {
  /** Database migrated with `uploadsMigrations`. Required. */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

interface PartRow {
  claim_id: string;
  part_number: number;
  etag: string;
  size: number;
  created_at: number;
}

/**
 * Per-part bookkeeping of multipart uploads. Rows cascade when their claim is deleted.
 *
 * @example
 * ```ts
 * await parts.upsert({ claimId, partNumber: 1, etag, size });
 * const recorded = await parts.listByClaim(claimId); // ordered by part number
 * ```
 */
export class UploadPartStore {
  readonly #db: Executor;
  readonly #clock: Clock;

  constructor(options: UploadPartStoreOptions) {
    this.#db = databaseOption(options, "parts.create");
    this.#clock = clockOption(options.clock, "parts.create", systemClock);
  }

  /**
   * Records a part, or replaces the etag and size of an already recorded part number (the last
   * writer wins, so re-uploading a part is safe). An unknown claim -> {@link ConstraintError}.
   */
  async upsert(
    part: Omit<UploadPart, "createdAt"> & { createdAt?: number },
    options: UploadsCallOptions = {},
  ): Promise<void> {
    await (options.executor ?? this.#db).run(
      `INSERT INTO storeroom_upload_parts (claim_id, part_number, etag, size, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (claim_id, part_number) DO UPDATE SET etag = excluded.etag, size = excluded.size`,
      [part.claimId, part.partNumber, part.etag, part.size, part.createdAt ?? this.#clock.now()],
    );
  }

  /** Every recorded part of a claim, ascending by part number (empty for an unknown claim). */
  async listByClaim(claimId: string, options: UploadsCallOptions = {}): Promise<UploadPart[]> {
    const rows = await (options.executor ?? this.#db).all<PartRow>(
      "SELECT claim_id, part_number, etag, size, created_at FROM storeroom_upload_parts WHERE claim_id = $1 ORDER BY part_number",
      [claimId],
    );
    return rows.map((r) => ({
      claimId: r.claim_id,
      partNumber: r.part_number,
      etag: r.etag,
      size: r.size,
      createdAt: r.created_at,
    }));
  }

  /** Deletes every part of a claim; returns how many. */
  async deleteByClaim(claimId: string, options: UploadsCallOptions = {}): Promise<number> {
    const { changes } = await (options.executor ?? this.#db).run(
      "DELETE FROM storeroom_upload_parts WHERE claim_id = $1",
      [claimId],
    );
    return changes;
  }
}
