/**
 * `pending`: the object is not finalised yet (between `initUpload` and `completeUpload`);
 * it can never be consumed. `uploaded`: the object exists and business code may adopt it.
 */
export type ClaimStatus = "pending" | "uploaded";

/**
 * The bookkeeping row of an upload not yet adopted by a business transaction
 * (`storeroom_upload_claims`). Not an audit record: consumed claims are deleted.
 */
export interface UploadClaim {
  readonly id: string;
  readonly createdAt: number;
  /** The owner principal's id; only the owner may upload parts, complete, abort or consume. */
  readonly createdBy: string;
  /** The object key; unique across claims. */
  readonly key: string;
  /** The backend multipart session, `""` until it is attached. */
  readonly uploadId: string;
  /** Declared size in bytes. */
  readonly size: number;
  readonly contentType: string;
  readonly originalFilename: string;
  readonly status: ClaimStatus;
  readonly public: boolean;
  readonly partSize: number;
  readonly partCount: number;
  /** Pending claims past this time (ms) are swept. */
  readonly expiresAt: number;
}

/**
 * The exact size of part `partNumber` (1-based) of `claim`: `partSize`, except the last part,
 * which holds the rest of the declared size.
 */
export function expectedPartSize(
  claim: Pick<UploadClaim, "size" | "partSize" | "partCount">,
  partNumber: number,
): number {
  return partNumber < claim.partCount ? claim.partSize : claim.size - (claim.partCount - 1) * claim.partSize;
}

/** What {@link ClaimStore.create} takes. */
export type NewUploadClaim = Omit<UploadClaim, "status" | "uploadId"> & { readonly uploadId?: string };

/** Raw row shape of `storeroom_upload_claims`. */
export interface ClaimRow {
  id: string;
  created_at: number;
  created_by: string;
  object_key: string;
  upload_id: string;
  size: number;
  content_type: string;
  original_filename: string;
  status: ClaimStatus;
  public: number;
  part_size: number;
  part_count: number;
  expires_at: number;
}

export const CLAIM_COLUMNS =
  "id, created_at, created_by, object_key, upload_id, size, content_type, original_filename, status, public, part_size, part_count, expires_at";

export function claimFromRow(row: ClaimRow): UploadClaim {
  return {
    id: row.id,
    createdAt: row.created_at,
    createdBy: row.created_by,
    key: row.object_key,
    uploadId: row.upload_id,
    size: row.size,
    contentType: row.content_type,
    originalFilename: row.original_filename,
    status: row.status,
    public: Number(row.public) === 1,
    partSize: row.part_size,
    partCount: row.part_count,
    expiresAt: row.expires_at,
  };
}
