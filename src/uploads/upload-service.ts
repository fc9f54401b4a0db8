import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../clock.js";
import {
  AccessDeniedError,
  ClaimNotFoundError,
  ConflictError,
  InvalidArgumentError,
  isStoreError,
  LimitExceededError,
  NotFoundError,
  TooLargeError,
  UnsupportedError,
  UploadFailedError,
} from "../errors.js";
import {
  booleanOption,
  clockOption,
  databaseOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import { type ObjectInfo, type ObjectStore, supportsDirectParts } from "../objects/index.js";
import { type Executor, takeTransactionLock } from "../sql/index.js";
import { ClaimStore } from "./claim-store.js";
import { sanitizeContentType } from "./content-type.js";
import { DeleteQueue } from "./delete-queue.js";
import { checkPartLength, exactBody } from "./part-body.js";
import { expectedPartSize, type UploadClaim } from "./upload-claim.js";
import { buildUploadKey } from "./upload-key.js";
import { UploadPartStore } from "./upload-part-store.js";
import type {
  CompletedUpload,
  DirectPart,
  InitUploadInput,
  InitUploadResult,
  UploadPartInput,
  UploadProgress,
  UploadServiceOptions,
} from "./upload-service-options.js";
import { uploadsMigrations } from "./uploads-migrations.js";

const GiB = 1024 ** 3;
/** Namespace of the per-owner advisory lock that makes the pending-claim cap exact on PostgreSQL. */
const PENDING_CAP_LOCK = 0x5570;

/**
 * The upload flow: every upload is multipart (a small file is one part).
 * `initUpload` inserts the claim BEFORE any backend side effect, `uploadPart` streams parts
 * (never trusting a client etag), `completeUpload` assembles and verifies the size (a mismatch
 * deletes the object), `abortUpload` cleans up; complete and abort are idempotent. Every
 * method checks that the caller owns the claim. Business code then adopts the object with
 * `Files.onCreate` / `ClaimStore.consumeMany` inside its own transaction.
 *
 * @example
 * ```ts
 * const uploads = new UploadService({ database: db, objects: new FileObjectStore({ root: "./data" }) });
 * const init = await uploads.initUpload(userId, { filename: "cat.png", size: bytes.length, contentType: "image/png" });
 * for (let n = 1; n <= init.partCount; n++) {
 *   const part = bytes.subarray((n - 1) * init.partSize, n * init.partSize);
 *   await uploads.uploadPart(userId, { claimId: init.claimId, partNumber: n, body: part });
 * }
 * const done = await uploads.completeUpload(userId, init.claimId); // { key, size, etag, ... }
 * ```
 */
export class UploadService {
  readonly #db: Executor;
  readonly #objects: ObjectStore;
  readonly #clock: Clock;
  readonly #claims: ClaimStore;
  readonly #parts: UploadPartStore;
  readonly #queue: DeleteQueue;
  readonly #maxUploadSize: number;
  readonly #claimTtlMs: number;
  readonly #maxPendingClaims: number;
  readonly #allowPublic: boolean;

  /**
   * Validates `options` (a bad value throws {@link InvalidArgumentError} naming the option),
   * applies `uploadsMigrations` to `database` unless `migrate: false`, and returns the service.
   */
  static async open(options: UploadServiceOptions): Promise<UploadService> {
    const service = new UploadService(options);
    if (booleanOption(options.migrate, "migrate", "uploads.open", true)) {
      const database = databaseOption(options, "uploads.open");
      if (!("migrate" in database) || typeof database.migrate !== "function") {
        throw new InvalidArgumentError(
          "database must be a Database (not a transaction) to migrate; or pass migrate: false",
          {
            op: "uploads.open",
          },
        );
      }
      await database.migrate(uploadsMigrations);
    }
    return service;
  }

  /**
   * Builds the service over a database already migrated with `uploadsMigrations` (`migrate`
   * is ignored here). Prefer {@link UploadService.open}.
   */
  constructor(options: UploadServiceOptions) {
    const op = "uploads.create";
    this.#db = databaseOption(options, op);
    this.#objects = objectStoreOption(options.objects, "objects", op);
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#claims = new ClaimStore({ database: this.#db, clock: this.#clock });
    this.#parts = new UploadPartStore({ database: this.#db, clock: this.#clock });
    this.#queue = new DeleteQueue({ database: this.#db, clock: this.#clock });
    this.#maxUploadSize = positiveInteger(options.maxUploadSize, "maxUploadSize", op, GiB);
    this.#claimTtlMs = positiveInteger(options.claimTtlMs, "claimTtlMs", op, 24 * 3_600_000);
    this.#maxPendingClaims = positiveInteger(options.maxPendingClaims, "maxPendingClaims", op, 100);
    this.#allowPublic = booleanOption(options.allowPublicUploads, "allowPublicUploads", op, false);
  }

  /** Largest declared upload size in bytes this service accepts. */
  get maxUploadSize(): number {
    return this.#maxUploadSize;
  }

  /**
   * Starts an upload. Errors (nothing created): an empty owner -> {@link AccessDeniedError};
   * a bad filename (empty, over 255 characters, NUL or a lone surrogate), size or content
   * type, or an owner with a lone surrogate -> {@link InvalidArgumentError}; over the size limit
   * or the backend's part count -> {@link TooLargeError}; `public` without
   * `allowPublicUploads` -> {@link AccessDeniedError}; the owner already has
   * `maxPendingClaims` unfinished uploads -> {@link LimitExceededError}.
   */
  async initUpload(owner: string, input: InitUploadInput): Promise<InitUploadResult> {
    const op = "uploads.initUpload";
    assertOwner(owner, op);
    const { filename, size } = input;
    if (
      typeof filename !== "string" ||
      filename.length === 0 ||
      filename.length > 255 ||
      filename.includes("\0") ||
      !filename.isWellFormed()
    ) {
      throw new InvalidArgumentError("filename must be 1..255 characters without NUL or lone surrogates", { op });
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError("size must be an integer >= 0", { op });
    if (input.contentType !== undefined && (typeof input.contentType !== "string" || input.contentType.length > 127)) {
      throw new InvalidArgumentError("contentType must be at most 127 characters", { op });
    }
    if (size > this.#maxUploadSize) {
      throw new TooLargeError(`upload of ${size} bytes exceeds the limit of ${this.#maxUploadSize}`, { op });
    }
    if (input.direct !== undefined && typeof input.direct !== "boolean") {
      throw new InvalidArgumentError("direct must be true or false", { op });
    }
    if (input.direct === true && !supportsDirectParts(this.#objects)) {
      throw new UnsupportedError("this object store takes no direct part uploads; send the parts to the server", {
        op,
      });
    }
    const isPublic = input.public === true;
    if (isPublic && !this.#allowPublic) throw new AccessDeniedError("public uploads are not allowed", { op });
    const partSize = this.#objects.partSize;
    const partCount = Math.ceil(size / partSize);
    if (partCount > this.#objects.maxPartCount) {
      throw new TooLargeError(`upload needs ${partCount} parts, the backend allows ${this.#objects.maxPartCount}`, {
        op,
      });
    }
    const contentType = sanitizeContentType(input.contentType, filename);
    const now = this.#clock.now();
    const claim = await this.#db.transaction(async (tx) => {
      await takeTransactionLock(tx, { space: PENDING_CAP_LOCK, name: owner });
      const pending = await this.#claims.countPendingByOwner(owner, { executor: tx });
      if (pending >= this.#maxPendingClaims) {
        throw new LimitExceededError(`${owner} already has ${pending} unfinished uploads`, this.#maxPendingClaims, {
          op,
        });
      }
      return this.#claims.create(
        {
          id: randomUUID(),
          createdAt: now,
          createdBy: owner,
          key: buildUploadKey(isPublic, now, filename),
          size,
          contentType,
          originalFilename: filename,
          public: isPublic,
          partSize,
          partCount,
          expiresAt: now + this.#claimTtlMs,
        },
        { executor: tx },
      );
    });
    // An empty file has no parts: completion writes it as a plain object.
    let uploadId = "";
    try {
      if (size > 0) uploadId = await this.#objects.initMultipart(claim.key, { contentType });
    } catch (err) {
      // Best effort: if this cleanup fails too, the sweeper reaps the claim at its expiry.
      await this.#claims.deleteById(claim.id).catch(() => undefined);
      throw err;
    }
    try {
      if (uploadId !== "") await this.#claims.updateUploadId(claim.id, uploadId);
    } catch (err) {
      await this.#objects.abortMultipart(claim.key, uploadId).catch(() => undefined);
      throw err;
    }
    const result = {
      key: claim.key,
      claimId: claim.id,
      uploadId,
      originalFilename: filename,
      contentType,
      partSize,
      partCount,
      expiresAt: claim.expiresAt,
    };
    if (input.direct !== true || !supportsDirectParts(this.#objects)) return result;
    const objects = this.#objects;
    const ttlSeconds = Math.min(604_800, Math.max(1, Math.ceil((claim.expiresAt - now) / 1000)));
    const parts: DirectPart[] = [];
    for (let partNumber = 1; partNumber <= partCount; partNumber++) {
      parts.push({
        partNumber,
        size: expectedPartSize(claim, partNumber),
        url: await objects.presignPart(claim.key, uploadId, partNumber, ttlSeconds),
      });
    }
    return { ...result, parts };
  }

  /**
   * Stores one part and records its backend etag (re-sending a part number replaces it).
   * Errors: unknown or expired claim -> {@link ClaimNotFoundError} (an expired claim is treated
   * like one the sweeper already removed); not the owner -> {@link AccessDeniedError};
   * completed claim -> {@link ConflictError}; part number outside 1..partCount, or a part
   * shorter than its exact size (`partSize`, or the rest of the declared size for the last
   * part) -> {@link InvalidArgumentError}; a part longer than that (it would exceed the part
   * size or the declared size), or a claim over the current size limit -> {@link TooLargeError}.
   * A refused part is refused before the backend is touched (a known `contentLength`) or
   * while it streams, and never replaces a part accepted earlier.
   */
  async uploadPart(owner: string, input: UploadPartInput): Promise<{ partNumber: number; size: number }> {
    const op = "uploads.uploadPart";
    const claim = await this.#ownedClaim(owner, input.claimId, op);
    if (claim.status !== "pending" || claim.uploadId === "") {
      throw new ConflictError(`upload ${claim.id} is not accepting parts`, { op });
    }
    if (this.#clock.now() >= claim.expiresAt) throw new ClaimNotFoundError(`upload ${claim.id} has expired`, { op });
    this.#checkSize(claim, op);
    const { partNumber } = input;
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > claim.partCount) {
      throw new InvalidArgumentError(`part number must be in 1..${claim.partCount}`, { op });
    }
    // Everything is checked before the backend is touched, so a bad re-send never replaces an accepted part.
    const expected = expectedPartSize(claim, partNumber);
    if (input.contentLength !== undefined) checkPartLength(input.contentLength, expected, op);
    const stored = await this.#objects.putPart(
      claim.key,
      claim.uploadId,
      partNumber,
      exactBody(input.body, expected, op),
      input.contentLength === undefined ? undefined : { contentLength: input.contentLength },
    );
    try {
      await this.#parts.upsert({ claimId: claim.id, partNumber, etag: stored.etag, size: stored.size });
    } catch (err) {
      if (isStoreError(err, "CONSTRAINT"))
        throw new ClaimNotFoundError(`claim ${claim.id} was removed`, { op, cause: err });
      throw err;
    }
    return { partNumber, size: stored.size };
  }

  /**
   * Assembles the recorded parts into the object and makes the claim consumable. Idempotent:
   * completing an already completed upload returns the object again. Errors: not the owner
   * -> {@link AccessDeniedError}; unknown or expired claim -> {@link ClaimNotFoundError};
   * parts missing -> {@link InvalidArgumentError}; assembled size differs from the declared size
   * -> {@link InvalidArgumentError} after the claim was removed and the object queued for
   * deletion (reason `size_mismatch`); over the current size limit
   * -> {@link TooLargeError}.
   */
  async completeUpload(owner: string, claimId: string): Promise<CompletedUpload> {
    const op = "uploads.completeUpload";
    const claim = await this.#ownedClaim(owner, claimId, op);
    if (claim.status === "uploaded") return this.#completed(claim, op);
    if (this.#clock.now() >= claim.expiresAt) throw new ClaimNotFoundError(`upload ${claim.id} has expired`, { op });
    this.#checkSize(claim, op);
    const parts = await this.#partsToComplete(claim, op);
    let info: ObjectInfo;
    try {
      info =
        claim.partCount === 0
          ? await this.#putEmpty(claim)
          : await this.#objects.completeMultipart(
              claim.key,
              claim.uploadId,
              parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
            );
    } catch (err) {
      // A retry after a completion whose claim update failed: the session is gone, the object is there.
      if (!isStoreError(err, "NOT_FOUND")) throw err;
      const existing = await this.#objects.head(claim.key);
      if (existing === null) throw err;
      info = existing;
    }
    const actual = info.size;
    if (actual !== claim.size) {
      // The published object is not what was declared: it goes through the delete queue like every other delete.
      await this.#db.transaction(async (tx) => {
        await this.#queue.schedule([claim.key], "size_mismatch", { executor: tx, owner });
        await this.#claims.deleteByIds([claim.id], { executor: tx });
      });
      throw new InvalidArgumentError(`size mismatch: declared ${claim.size} bytes, uploaded ${actual}`, { op });
    }
    try {
      await this.#db.transaction(async (tx) => {
        await this.#claims.markUploaded(claim.id, { executor: tx });
        await this.#parts.deleteByClaim(claim.id, { executor: tx });
      });
    } catch (err) {
      // A concurrent completion may have won; then this one is a successful retry.
      if (!isStoreError(err, "CLAIM_NOT_FOUND")) throw err;
      const now = await this.#claims.get(claim.id);
      if (now.status !== "uploaded") throw err;
    }
    return { ...this.#result(claim), etag: info.etag, size: actual };
  }

  /**
   * Cancels an unfinished upload: aborts the multipart session, deletes the object and the
   * claim. Idempotent: an unknown claim is success. A completed upload -> {@link ConflictError}
   * (delete the file instead); not the owner -> {@link AccessDeniedError};
   * the backend refusing the abort -> {@link UploadFailedError} (the claim stays, so a retry
   * or the sweeper finishes the job).
   */
  async abortUpload(owner: string, claimId: string): Promise<void> {
    const op = "uploads.abortUpload";
    assertOwner(owner, op);
    let claim: UploadClaim;
    try {
      claim = await this.#claims.get(claimId);
    } catch (err) {
      if (isStoreError(err, "CLAIM_NOT_FOUND")) return;
      throw err;
    }
    if (claim.createdBy !== owner) throw new AccessDeniedError(`upload ${claimId} belongs to someone else`, { op });
    if (claim.status === "uploaded") {
      throw new ConflictError(`upload ${claimId} is complete; delete the file instead of aborting the upload`, { op });
    }
    if (claim.uploadId !== "") {
      try {
        await this.#objects.abortMultipart(claim.key, claim.uploadId);
      } catch (err) {
        throw new UploadFailedError(`abort failed for upload ${claimId}`, { op, cause: err });
      }
    }
    await this.#objects.delete(claim.key);
    await this.#db.transaction(async (tx) => {
      await this.#parts.deleteByClaim(claim.id, { executor: tx });
      await this.#claims.deleteByIds([claim.id], { executor: tx });
    });
  }

  /**
   * The state of an upload. Unfinished: the parts received so far (number and size, never
   * etags), so a client can resume. Complete: the file's key and size, without `parts` (their
   * bookkeeping ends with the completion) and without `expiresAt`. Errors as `uploadPart`.
   */
  async listParts(owner: string, claimId: string): Promise<UploadProgress> {
    const claim = await this.#ownedClaim(owner, claimId, "uploads.listParts");
    const { id, key, size, partSize, partCount } = claim;
    if (claim.status === "uploaded") return { claimId: id, key, status: "uploaded", size, partSize, partCount };
    const parts = await this.#parts.listByClaim(id);
    return {
      claimId: id,
      key,
      status: "pending",
      size,
      partSize,
      partCount,
      expiresAt: claim.expiresAt,
      parts: parts.map((p) => ({ partNumber: p.partNumber, size: p.size })),
    };
  }

  /**
   * The parts to assemble: the recorded ones; when they are incomplete and the store takes
   * direct uploads, what the store holds (parts PUT straight to it), each checked against its
   * exact size before anything is published.
   */
  async #partsToComplete(
    claim: UploadClaim,
    op: string,
  ): Promise<{ partNumber: number; etag: string; size: number }[]> {
    const recorded = await this.#parts.listByClaim(claim.id);
    if (recorded.length === claim.partCount || !supportsDirectParts(this.#objects)) {
      if (recorded.length !== claim.partCount) {
        throw new InvalidArgumentError(`parts incomplete: ${recorded.length} of ${claim.partCount} uploaded`, { op });
      }
      return recorded;
    }
    const stored = (await this.#objects.listParts(claim.key, claim.uploadId)).filter(
      (p) => p.partNumber >= 1 && p.partNumber <= claim.partCount,
    );
    if (stored.length !== claim.partCount) {
      throw new InvalidArgumentError(`parts incomplete: ${stored.length} of ${claim.partCount} uploaded`, { op });
    }
    for (const part of stored) {
      const expected = expectedPartSize(claim, part.partNumber);
      if (part.size !== expected) {
        throw new InvalidArgumentError(
          `part ${part.partNumber} is ${part.size} bytes; it must be exactly ${expected} (send it again)`,
          { op },
        );
      }
    }
    return stored.map((p) => ({ partNumber: p.partNumber, etag: p.etag, size: p.size }));
  }

  async #ownedClaim(owner: string, claimId: string, op: string): Promise<UploadClaim> {
    assertOwner(owner, op);
    if (typeof claimId !== "string" || claimId === "") throw new InvalidArgumentError("claimId is required", { op });
    const claim = await this.#claims.get(claimId);
    if (claim.createdBy !== owner) throw new AccessDeniedError(`upload ${claimId} belongs to someone else`, { op });
    return claim;
  }

  #checkSize(claim: UploadClaim, op: string): void {
    if (claim.size > this.#maxUploadSize) {
      throw new TooLargeError(`upload of ${claim.size} bytes exceeds the limit of ${this.#maxUploadSize}`, { op });
    }
  }

  async #completed(claim: UploadClaim, op: string): Promise<CompletedUpload> {
    const info = await this.#objects.head(claim.key);
    if (info === null) throw new NotFoundError(`object of upload ${claim.id} is missing`, { op });
    return { ...this.#result(claim), etag: info.etag, size: info.size };
  }

  async #putEmpty(claim: UploadClaim): Promise<ObjectInfo> {
    await this.#objects.put(claim.key, Buffer.alloc(0), { contentType: claim.contentType });
    const info = await this.#objects.head(claim.key);
    if (info === null) throw new UploadFailedError(`the empty file ${claim.key} vanished after it was written`);
    return info;
  }

  #result(claim: UploadClaim): Omit<CompletedUpload, "etag" | "size"> {
    return {
      key: claim.key,
      contentType: claim.contentType,
      originalFilename: claim.originalFilename,
      public: claim.public,
    };
  }
}

function assertOwner(owner: string, op: string): void {
  if (typeof owner !== "string" || owner === "") throw new AccessDeniedError("an owner is required", { op });
  // Stored as UTF-8, such an owner would read back as another one and lose its own uploads.
  if (!owner.isWellFormed()) throw new InvalidArgumentError("owner must not contain a lone surrogate", { op });
}
