import type { Clock } from "../clock.js";
import type { ObjectBodyInput, ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";

/** Options of {@link UploadService.open}. Numbers are positive integers; anything else throws `InvalidArgumentError`. */
export interface UploadServiceOptions {
  /**
   * The database holding the uploads tables; {@link UploadService.open} applies
   * `uploadsMigrations` to it unless `migrate: false`. Required.
   */
  database?: Executor;
  /** @deprecated Renamed `database`. */
  db?: Executor;
  /** Apply `uploadsMigrations` in {@link UploadService.open}. Default `true`. */
  migrate?: boolean;
  /** The backend objects are uploaded to (its `partSize` / `maxPartCount` shape every upload). */
  objects: ObjectStore;
  /** Default the system clock. */
  clock?: Clock;
  /** Largest declared upload size in bytes. Default 1 GiB; re-checked at every part and at completion. */
  maxUploadSize?: number;
  /** How long an unfinished upload may take before the sweeper reaps it. Default 24 h. */
  claimTtlMs?: number;
  /** Unfinished uploads one owner may have at once. Default 100. */
  maxPendingClaims?: number;
  /** Whether `public: true` uploads (keys under `pub/`, served anonymously) are allowed. Default `false`. */
  allowPublicUploads?: boolean;
}

/** Input of {@link UploadService.initUpload}. */
export interface InitUploadInput {
  /** The client's file name (1..255 characters); its extension is kept in the key. */
  filename: string;
  /** Declared size in bytes, >= 1. The assembled object must match it exactly. */
  size: number;
  /** Declared type (<= 127 characters); sanitised, see `sanitizeContentType`. */
  contentType?: string;
  /** Store under `pub/` (needs `allowPublicUploads`). Default `false`. */
  public?: boolean;
  /**
   * Return a presigned URL per part so the client PUTs parts straight to the object store
   * (only stores with `DirectPartUploads`, i.e. S3; others -> `UnsupportedError`). Default `false`.
   */
  direct?: boolean;
}

/** One part a client sends straight to the object store. */
export interface DirectPart {
  readonly partNumber: number;
  /** Exactly this many bytes. */
  readonly size: number;
  /** PUT the bytes here, with no other credentials, before `InitUploadResult.expiresAt`. */
  readonly url: string;
}

/** What {@link UploadService.initUpload} returns: everything a client needs to send the parts. */
export interface InitUploadResult {
  readonly key: string;
  readonly claimId: string;
  readonly uploadId: string;
  readonly originalFilename: string;
  readonly contentType: string;
  /** Every part but the last must be exactly this many bytes; the last at most this many. */
  readonly partSize: number;
  readonly partCount: number;
  readonly expiresAt: number;
  /** With `direct: true`: where to PUT each part (then call `completeUpload` as usual). */
  readonly parts?: readonly DirectPart[];
}

/** Input of {@link UploadService.uploadPart}. */
export interface UploadPartInput {
  claimId: string;
  /** 1..partCount. */
  partNumber: number;
  body: ObjectBodyInput;
  /** Byte length of a streamed body when known (lets S3 stream it without buffering). */
  contentLength?: number;
}

/** A finished upload: the object's metadata plus the client's file name. */
export interface CompletedUpload {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly contentType: string;
  readonly originalFilename: string;
  readonly public: boolean;
}

/**
 * What {@link UploadService.listParts} returns: a {@link PendingUploadProgress} while the
 * upload is unfinished (the parts received, so a client can resume), a
 * {@link CompletedUploadProgress} once it is complete (the parts became the file; their
 * bookkeeping is gone). Tell them apart by `status`. Etags are never exposed.
 */
export type UploadProgress = PendingUploadProgress | CompletedUploadProgress;

/** An unfinished upload: what arrived so far and until when the rest may come. */
export interface PendingUploadProgress {
  readonly claimId: string;
  readonly key: string;
  readonly status: "pending";
  readonly size: number;
  readonly partSize: number;
  readonly partCount: number;
  /** After this time (ms) the claim is refused and swept. */
  readonly expiresAt: number;
  /** The parts received, by number; those missing are still to send. */
  readonly parts: readonly { readonly partNumber: number; readonly size: number }[];
}

/**
 * A completed upload: the file is at `key` with `size` bytes. No `parts` (the file is whole)
 * and no `expiresAt` (a completed upload does not expire).
 */
export interface CompletedUploadProgress {
  readonly claimId: string;
  readonly key: string;
  readonly status: "uploaded";
  readonly size: number;
  readonly partSize: number;
  readonly partCount: number;
}
