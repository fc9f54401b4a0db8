import { createHash, type Hash } from "node:crypto";
import { type Clock, systemClock } from "../clock.js";
import {
  AccessDeniedError,
  ChecksumMismatchError,
  ClaimNotFoundError,
  ConflictError,
  InvalidArgumentError,
  TooLargeError,
} from "../errors.js";
import {
  clockOption,
  databaseOption,
  objectOption,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import type { Executor } from "../sql/index.js";
import { abortableChunks, ChunksAbortedError } from "./abortable-chunks.js";
import { type AppendLease, AppendLeases } from "./append-lease.js";
import { ClaimStore } from "./claim-store.js";
import { IN_FLIGHT_BYTES, PartBuffers, PartWriter, type WrittenPart } from "./part-writer.js";
import type { UploadClaim } from "./upload-claim.js";
import { UploadLocks } from "./upload-locks.js";
import { UploadPartStore } from "./upload-part-store.js";
import type { UploadService } from "./upload-service.js";
import type { CompletedUpload, InitUploadInput } from "./upload-service-options.js";

/** Options of {@link ResumableUploads}. */
export interface ResumableUploadsOptions {
  /** The database of `uploads` (migrated with `uploadsMigrations`). Required. */
  database?: Executor;
  /** The backend of `uploads`. */
  objects: ObjectStore;
  /** Creates, completes and aborts the claims behind resumable uploads. */
  uploads: UploadService;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /**
   * How long an append's hold on an upload outlives its process, ms: after a crash the next
   * append of that upload waits at most this long. Default 10 000.
   */
  leaseMs?: number;
}

/** Checksum algorithms {@link ResumableUploads.append} verifies. */
export const CHECKSUM_ALGORITHMS: readonly string[] = Object.freeze(["md5", "sha1", "sha256", "sha512"]);

/** Where a resumable upload stands. */
export interface ResumableUploadStatus {
  readonly claimId: string;
  readonly key: string;
  /** Declared size in bytes. */
  readonly size: number;
  /** Bytes received and kept so far; the next append starts here. */
  readonly offset: number;
  /** When the sweeper reaps the upload if it is not complete, ms since the epoch. */
  readonly expiresAt: number;
  /** The opaque metadata given at creation (a tus `Upload-Metadata` value), `""` when none. */
  readonly metadata: string;
  /** True once every byte arrived and the object was published. */
  readonly complete: boolean;
}

/** Options of {@link ResumableUploads.append}. */
export interface AppendOptions {
  /** A checksum of exactly this append's bytes; on a mismatch none of them are kept. */
  checksum?: { algorithm: string; digest: Buffer };
  /** Declared length of the body, when known: refused up front if it would pass the declared size. */
  contentLength?: number;
}

/** What {@link ResumableUploads.append} did. */
export interface AppendResult extends ResumableUploadStatus {
  /** The published file when this append completed the upload. */
  readonly file?: CompletedUpload;
}

interface OffsetRow {
  upload_offset: number | string;
  tail: Uint8Array | null;
  metadata: string;
}

/**
 * Offset-addressed uploads (the model of the tus protocol) on the same claims, parts and
 * delete queue as {@link UploadService}: an upload is a claim; bytes arrive by offset in
 * appends of any length; every time a part fills it is stored in the backend and recorded,
 * and bytes past the last whole part wait in the database (at most one part per upload)
 * until the next append fills it. An interrupted append keeps what arrived. The last append
 * publishes the object; expiry is the claim sweeper's.
 *
 * One append (or status read) per upload runs at a time, also across processes sharing the
 * database: a new one stops the one in progress first, which saves what it received (in this
 * process at once; in another one within a second, through a lease on the upload's row). A
 * process that died holding an upload delays its next append by at most `leaseMs`.
 *
 * @example
 * ```ts
 * const resumable = new ResumableUploads({ database, objects, uploads });
 * const created = await resumable.create(owner, { filename: "a.mp4", size: 100 * MiB });
 * let status = await resumable.append(owner, created.claimId, 0, firstChunks);
 * status = await resumable.append(owner, created.claimId, (await resumable.status(owner, created.claimId)).offset, rest);
 * ```
 */
export class ResumableUploads {
  readonly #db: Executor;
  readonly #objects: ObjectStore;
  readonly #uploads: UploadService;
  readonly #clock: Clock;
  readonly #claims: ClaimStore;
  readonly #parts: UploadPartStore;
  readonly #locks = new UploadLocks();
  readonly #leases: AppendLeases;
  readonly #buffers: PartBuffers;

  constructor(options: ResumableUploadsOptions) {
    const op = "resumable.create";
    this.#db = databaseOption(options, op);
    this.#objects = objectStoreOption(options.objects, "objects", op);
    this.#uploads = objectOption(options.uploads, "uploads", op, "an UploadService", [
      "initUpload",
      "completeUpload",
      "abortUpload",
    ]);
    this.#clock = clockOption(options.clock, op, systemClock);
    this.#claims = new ClaimStore({ database: this.#db, clock: this.#clock });
    this.#parts = new UploadPartStore({ database: this.#db, clock: this.#clock });
    this.#leases = new AppendLeases(this.#db, this.#clock, positiveInteger(options.leaseMs, "leaseMs", op, 10_000));
    // Enough free buffers for one append's parts in flight and the one filling.
    this.#buffers = new PartBuffers(Math.max(1, Math.floor(IN_FLIGHT_BYTES / this.#objects.partSize)) + 1);
  }

  /**
   * Starts an upload with offset 0; one of size 0 is complete (published) at once. Errors are
   * those of {@link UploadService.initUpload};
   * `metadata` longer than 4096 characters -> {@link InvalidArgumentError}.
   */
  async create(owner: string, input: InitUploadInput & { metadata?: string }): Promise<ResumableUploadStatus> {
    const metadata = input.metadata ?? "";
    if (typeof metadata !== "string" || metadata.length > 4096) {
      throw new InvalidArgumentError("metadata must be at most 4096 characters", { op: "resumable.create" });
    }
    const { metadata: _, ...init } = input;
    const started = await this.#uploads.initUpload(owner, init);
    try {
      await this.#db.run(
        "INSERT INTO storeroom_upload_offsets (claim_id, upload_offset, tail, metadata) VALUES ($1, 0, NULL, $2)",
        [started.claimId, metadata],
      );
    } catch (err) {
      await this.#uploads.abortUpload(owner, started.claimId).catch(() => undefined);
      throw err;
    }
    const status = {
      claimId: started.claimId,
      key: started.key,
      size: input.size,
      offset: 0,
      expiresAt: started.expiresAt,
      metadata,
      complete: false,
    };
    if (input.size > 0) return status;
    // An empty upload has all its bytes at creation.
    await this.#uploads.completeUpload(owner, started.claimId);
    return { ...status, complete: true };
  }

  /**
   * The upload's offset and state. Stops an append in progress first, so the offset includes
   * everything it received. Unknown, expired or already adopted -> {@link ClaimNotFoundError};
   * not the owner -> {@link AccessDeniedError}.
   */
  async status(owner: string, claimId: string): Promise<ResumableUploadStatus> {
    const lock = await this.#locks.acquire(claimId);
    try {
      const claim = await this.#ownedClaim(owner, claimId, "resumable.status");
      if (claim.status === "uploaded") return (await this.#state(claim)).status;
      const lease = await this.#leases.acquire(claimId, "resumable.status");
      try {
        return (await this.#state(claim)).status;
      } finally {
        await lease.release();
      }
    } finally {
      lock.release();
    }
  }

  /**
   * Appends `body` at `offset`. Refused before any byte is read: `offset` is not the upload's
   * offset, or the upload is complete -> {@link ConflictError}; `contentLength` would pass the
   * declared size -> {@link TooLargeError}; an unknown checksum algorithm ->
   * {@link InvalidArgumentError}; plus the errors of {@link ResumableUploads.status}. While
   * reading: a body passing the declared size -> {@link TooLargeError} (whole parts before it
   * are kept); a checksum that does not match -> {@link ChecksumMismatchError}, and nothing of
   * this append is kept; a backend failure is thrown after saving what arrived. A body that fails
   * or is stopped midway (the client went away, another append or status call took over)
   * keeps every byte that arrived and resolves with the new offset (unless a checksum was
   * given). When the last byte arrives the object is published and returned as `file`.
   */
  async append(
    owner: string,
    claimId: string,
    offset: number,
    body: AsyncIterable<Uint8Array | string>,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const op = "resumable.append";
    const hash = checksumHash(options.checksum, op);
    const lock = await this.#locks.acquire(claimId);
    try {
      const claim = await this.#ownedClaim(owner, claimId, op);
      if (claim.status === "uploaded") throw new ConflictError(`upload ${claimId} is already complete`, { op });
      const lease = await this.#leases.acquire(claimId, op, lock.signal);
      try {
        // Another process may have completed it while this one waited for the lease.
        if ((await this.#claims.get(claimId)).status === "uploaded") {
          throw new ConflictError(`upload ${claimId} is already complete`, { op });
        }
        return await this.#appendLeased(owner, claim, lease, lease.signal, {
          offset,
          body,
          options,
          hash,
        });
      } finally {
        await lease.release();
      }
    } finally {
      lock.release();
    }
  }

  async #appendLeased(
    owner: string,
    claim: UploadClaim,
    lease: AppendLease,
    signal: AbortSignal,
    input: {
      offset: number;
      body: AsyncIterable<Uint8Array | string>;
      options: AppendOptions;
      hash: Hash | undefined;
    },
  ): Promise<AppendResult> {
    const op = "resumable.append";
    const { offset, body, options, hash } = input;
    const claimId = claim.id;
    const state = await this.#state(claim);
    if (offset !== state.status.offset) {
      throw new ConflictError(`offset ${offset} does not match the upload's offset ${state.status.offset}`, { op });
    }
    if (options.contentLength !== undefined && offset + options.contentLength > claim.size) {
      throw new TooLargeError(`${offset + options.contentLength} bytes would pass the declared ${claim.size}`, {
        op,
      });
    }
    const writer = new PartWriter(this.#objects, claim, state.partNumber, state.tail, this.#buffers);
    try {
      const checked = hash !== undefined;
      const recorded: WrittenPart[] = [];
      // With a checksum, parts are recorded only once it matched; without, as they are stored.
      const keep = async (parts: WrittenPart[]) => {
        if (checked) recorded.push(...parts);
        else if (parts.length > 0) await this.#record(claim, lease, parts);
      };
      let failure: unknown;
      try {
        for await (const chunk of abortableChunks(body, signal)) {
          hash?.update(chunk);
          if (writer.received + chunk.byteLength > claim.size) {
            throw new TooLargeError(`the upload would pass its declared ${claim.size} bytes`, { op });
          }
          await writer.add(chunk);
          await keep(writer.takeStored());
        }
      } catch (err) {
        failure = err;
      }
      // The parts in flight are settled however the body ended, so an interrupted append keeps them.
      try {
        await writer.flush(failure === undefined);
      } catch (err) {
        failure ??= err;
      }
      await keep(writer.takeStored());
      if (checked) {
        if (failure !== undefined) throw failure;
        const digest = hash.digest();
        if (!digest.equals(options.checksum?.digest ?? Buffer.alloc(0))) {
          throw new ChecksumMismatchError(`the ${options.checksum?.algorithm} checksum does not match the body`, {
            op,
          });
        }
        await this.#record(claim, lease, recorded, writer.tail());
      } else {
        await this.#record(claim, lease, [], writer.tail());
        if (failure !== undefined && !isInterruption(failure)) throw failure;
      }
    } finally {
      writer.release();
    }
    const next = await this.#state(claim);
    if (next.status.offset === claim.size) {
      const file = await this.#uploads.completeUpload(owner, claimId);
      return { ...next.status, complete: true, file };
    }
    return next.status;
  }

  /**
   * Cancels an unfinished upload ({@link UploadService.abortUpload}; a completed one ->
   * {@link ConflictError}). Stops an append in progress first.
   */
  async terminate(owner: string, claimId: string): Promise<void> {
    const lock = await this.#locks.acquire(claimId);
    try {
      await this.#ownedClaim(owner, claimId, "resumable.terminate");
      const lease = await this.#leases.acquire(claimId, "resumable.terminate");
      try {
        await this.#uploads.abortUpload(owner, claimId);
      } finally {
        await lease.release();
      }
    } finally {
      lock.release();
    }
  }

  async #ownedClaim(owner: string, claimId: string, op: string): Promise<UploadClaim> {
    if (typeof owner !== "string" || owner === "") throw new AccessDeniedError("an owner is required", { op });
    const claim = await this.#claims.get(claimId);
    if (claim.createdBy !== owner) throw new AccessDeniedError(`upload ${claimId} belongs to someone else`, { op });
    if (claim.status === "pending" && this.#clock.now() >= claim.expiresAt) {
      throw new ClaimNotFoundError(`upload ${claimId} has expired`, { op });
    }
    return claim;
  }

  /**
   * The offset is derived, never stored on its own: the recorded parts 1..k without a gap,
   * plus the saved tail when it continues exactly there. Parts sent through the part API of
   * the same claim therefore count too.
   */
  async #state(claim: UploadClaim): Promise<{ status: ResumableUploadStatus; partNumber: number; tail: Buffer }> {
    const row = await this.#db.get<OffsetRow>(
      "SELECT upload_offset, tail, metadata FROM storeroom_upload_offsets WHERE claim_id = $1",
      [claim.id],
    );
    const base = {
      claimId: claim.id,
      key: claim.key,
      size: claim.size,
      expiresAt: claim.expiresAt,
      metadata: row?.metadata ?? "",
    };
    if (claim.status === "uploaded") {
      return { status: { ...base, offset: claim.size, complete: true }, partNumber: claim.partCount + 1, tail: EMPTY };
    }
    const parts = await this.#parts.listByClaim(claim.id);
    let whole = 0;
    let next = 1;
    for (const part of parts) {
      if (part.partNumber !== next) break;
      whole += part.size;
      next++;
    }
    const saved = row?.tail === null || row?.tail === undefined ? EMPTY : Buffer.from(row.tail);
    const tail = Number(row?.upload_offset ?? -1) === whole && next <= claim.partCount ? saved : EMPTY;
    return { status: { ...base, offset: whole + tail.byteLength, complete: false }, partNumber: next, tail };
  }

  async #record(
    claim: UploadClaim,
    lease: AppendLease,
    parts: readonly { partNumber: number; etag: string; size: number }[],
    tail?: { offset: number; bytes: Buffer },
  ): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await lease.fence(tx);
      for (const part of parts) await this.#parts.upsert({ claimId: claim.id, ...part }, { executor: tx });
      if (tail !== undefined) await this.#saveTail(claim, tail, tx);
    });
  }

  async #saveTail(claim: UploadClaim, tail: { offset: number; bytes: Buffer }, executor: Executor = this.#db) {
    await executor.run("UPDATE storeroom_upload_offsets SET upload_offset = $1, tail = $2 WHERE claim_id = $3", [
      tail.offset,
      tail.bytes.byteLength === 0 ? null : tail.bytes,
      claim.id,
    ]);
  }
}

const EMPTY = Buffer.alloc(0);

/** A body that ended early or was stopped: keep what arrived and answer with the offset. */
function isInterruption(err: unknown): boolean {
  if (err instanceof ChunksAbortedError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (err as Error)?.name === "AbortError";
}

function checksumHash(checksum: AppendOptions["checksum"], op: string): Hash | undefined {
  if (checksum === undefined) return undefined;
  if (!CHECKSUM_ALGORITHMS.includes(checksum.algorithm)) {
    throw new InvalidArgumentError(`checksum algorithm must be one of ${CHECKSUM_ALGORITHMS.join(", ")}`, { op });
  }
  return createHash(checksum.algorithm);
}
