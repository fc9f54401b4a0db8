/**
 * Why an object is queued for deletion: `replaced` and `deleted` come from business code
 * (`Files.onUpdate` / `onDelete`), `claim_expired` from the claim sweeper, `size_mismatch`
 * from an upload whose assembled size differed from the declared one (written by
 * `UploadService.completeUpload`), `reconcile` from {@link reconcile} purging quarantined copies.
 */
export type DeleteReason = "replaced" | "deleted" | "claim_expired" | "size_mismatch" | "reconcile";

/** The reasons {@link DeleteReason} allows, for validation. */
export const DELETE_REASONS: readonly DeleteReason[] = Object.freeze([
  "replaced",
  "deleted",
  "claim_expired",
  "size_mismatch",
  "reconcile",
]);

/** One queued instruction to delete an object (a row of `storeroom_pending_deletes`). */
export interface PendingDelete {
  readonly id: string;
  readonly key: string;
  /** Non-empty when a multipart session must be aborted before the object is deleted. */
  readonly uploadId: string;
  readonly reason: DeleteReason;
  /** Failed attempts so far. */
  readonly attempts: number;
  /** When the row is next due (or when its lease ends), ms since the epoch. */
  readonly nextAttemptAt: number;
  readonly createdAt: number;
  /** Message of the last failure, `""` when none. */
  readonly lastError: string;
  /** Who the object belonged to, `""` when the scheduler did not say. */
  readonly owner: string;
}

/** What {@link DeleteQueue.enqueue} takes: a row without its bookkeeping. */
export interface PendingDeleteInput {
  readonly key: string;
  readonly reason: DeleteReason;
  /** Multipart session to abort first. Default `""` (none). */
  readonly uploadId?: string;
  /** Default: now. */
  readonly nextAttemptAt?: number;
  /** Who the object belongs to (carried into the `file.deleted` event). Default `""`. */
  readonly owner?: string;
}

/** A retired row of `storeroom_delete_dead_letters`. */
export interface DeadLetter {
  readonly id: string;
  readonly key: string;
  readonly uploadId: string;
  readonly reason: DeleteReason;
  readonly attempts: number;
  readonly lastError: string;
  readonly errorClass: string;
  readonly createdAt: number;
  readonly deadAt: number;
  readonly owner: string;
}
