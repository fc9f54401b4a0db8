import type { DeleteReason } from "./pending-delete.js";

/** `file.claimed`: business code adopted an uploaded object (written by `ClaimStore.consumeMany`). */
export interface FileClaimedEvent {
  readonly topic: "file.claimed";
  readonly payload: { readonly fileKey: string; readonly owner: string };
}

/** `file.deleted`: the delete worker removed an object (written together with `DeleteQueue.done`). */
export interface FileDeletedEvent {
  readonly topic: "file.deleted";
  readonly payload: {
    readonly fileKey: string;
    readonly reason: DeleteReason;
    /** Who the file belonged to, when the delete was scheduled with an owner; else `""`. */
    readonly owner: string;
  };
}

/** `delete.dead_letter`: a pending delete failed too often and was retired to the dead-letter table. */
export interface DeleteDeadLetterEvent {
  readonly topic: "delete.dead_letter";
  readonly payload: {
    readonly pendingDeleteId: string;
    readonly fileKey: string;
    readonly reason: DeleteReason;
    readonly attempts: number;
    readonly lastError: string;
    /** `access_denied`, `not_found` or `transient`. */
    readonly errorClass: string;
    /** Who the file belonged to, when known; else `""`. */
    readonly owner: string;
  };
}

/** Every event the uploads module writes to its outbox. */
export type UploadEvent = FileClaimedEvent | FileDeletedEvent | DeleteDeadLetterEvent;

/** An event as read back from the outbox. */
export type OutboxRecord = UploadEvent & {
  /** Increasing id; dispatch order within one drain. */
  readonly id: number;
  /** When the event was written, ms since the epoch. */
  readonly createdAt: number;
};
