import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { ClosedError, CorruptDatabaseError, isStoreError, UploadFailedError } from "../errors.js";
import { Mutex } from "../internal/mutex.js";
import type { SqliteDatabase } from "../sql/index.js";
import { planConflict } from "./conflict-records.js";
import { encodeManifest, MANIFEST_FORMAT, type Manifest, type SnapshotEntry } from "./manifest.js";
import { appendToLog, retain } from "./manifest-log.js";
import { findGarbage } from "./replica-gc.js";
import type { ReplicaHost } from "./replica-host.js";
import { isConflict, type ReplicaObjects, type StoredManifest } from "./replica-objects.js";
import { ownPosition, PositionFile, type ReplicaPosition } from "./replica-position.js";
import { writeSnapshotFile } from "./snapshot-file.js";
import { TenantConflictError } from "./tenant-conflict-error.js";
import type { TenantKey } from "./tenant-key.js";
import {
  isSuccessor,
  sameCursor,
  sameGeneration,
  type WalCursor,
  WalFile,
  type WalRead,
  walStart,
} from "./wal-reader.js";

/** Publication attempts a `sync` write makes before it fails (the data stays local and is retried in the background). */
const SYNC_ATTEMPTS = 3;
const SYNC_RETRY_MS = 50;
/** Longest pause between background retries after failures. */
const MAX_RETRY_MS = 30_000;
/** First pause after a failed background publication (doubled per further failure). */
const FIRST_RETRY_MS = 100;

/** Where publication resumes in a WAL: a cursor, nothing to read, or frames lost to an outside checkpoint. */
export type WalStart = WalCursor | "none" | "unreadable";

/**
 * Where the unpublished frames start in `wal`, by the rules of {@link ReplicaPosition}: the
 * recorded cursor when the WAL still holds it; the start of a WAL that replaced the recorded
 * one through a checkpoint or clean close this process made with everything published;
 * otherwise the frames after the cursor can no longer be read.
 */
export function startCursor(position: ReplicaPosition, wal: WalFile | undefined): WalStart {
  const header = wal?.header;
  const cursor = position.cursor;
  if (cursor === null) return header === undefined ? "none" : walStart(header);
  if (header !== undefined && sameGeneration(header, cursor)) return wal?.holds(cursor) ? cursor : "unreadable";
  if (position.closed) return header === undefined ? "none" : walStart(header);
  if (header !== undefined && position.checkpointed && isSuccessor(header, cursor)) return walStart(header);
  return "unreadable";
}

interface Round {
  readonly transactions: number;
  readonly bytes: number;
  readonly more: boolean;
}

const NOTHING: Round = { transactions: 0, bytes: 0, more: false };

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Continuous replication of one open tenant database: reads committed frames from its WAL,
 * publishes them as segments named by a conditionally written manifest, takes snapshots,
 * checkpoints the WAL only up to what was published, and detects being fenced by another
 * writer. All publication of a tenant runs under one lock; `sync` writers wait for the next
 * round that starts after their commit, so concurrent commits share one segment (group commit).
 */
export class TenantReplica {
  readonly key: TenantKey;
  readonly path: string;
  readonly objects: ReplicaObjects;
  /** The manifest this copy derives from (`null`: the tenant was never published). */
  manifest: Manifest | null;
  etag: string | null;
  position: ReplicaPosition;
  /** A never-published tenant is published only once it holds more than schema set-up. */
  hasContent: boolean;
  /** Set once another writer took the tenant; every later write fails with it. */
  conflict: TenantConflictError | undefined;
  /** A caller already received `conflict` (the store then does not raise it again on the next call). */
  conflictSeen = false;
  /** Where the conflict record will go. */
  planned: { id: string; keptAt: string } | undefined;
  /** The manifest that won, when it could be read. */
  remote: StoredManifest | null = null;
  /** Transactions of the local copy that no manifest names, counted when a fenced copy closed. */
  unpublished: number | null = null;
  readonly #host: ReplicaHost;
  readonly #lock = new Mutex();
  #db: SqliteDatabase | undefined;
  /** Oldest local commit not yet published (ms), for the lag metrics. */
  #unshippedSince: number | undefined;
  #ambiguous = false;
  #closed = false;
  /** A close is under way (or failed and left the replica open again: then false). */
  #closing = false;
  #waiters: Waiter[] = [];
  #pumping = false;
  #failures = 0;
  /** No background publication before this time (ms, after failures). */
  #retryAt = 0;
  #snapshotJob: Promise<void> | undefined;
  /** Lowest fencing epoch a publication may carry: the ownership lease's (0 without ownership). */
  #minEpoch = 0;
  /** Recording that a never-published copy holds content (the `dirty` mark); every write waits for it. */
  #marking: Promise<void> | undefined;
  /** Opened at the first position update, closed with the database. */
  #positionFile: PositionFile | undefined;

  constructor(
    host: ReplicaHost,
    key: TenantKey,
    path: string,
    objects: ReplicaObjects,
    stored: StoredManifest | null,
    position: ReplicaPosition,
    hasContent: boolean,
  ) {
    this.#host = host;
    this.key = key;
    this.path = path;
    this.objects = objects;
    this.manifest = stored?.manifest ?? null;
    this.etag = stored?.etag ?? null;
    this.position = position;
    this.hasContent = hasContent;
  }

  /** The open database (the store opens it after preparing the file). */
  attach(db: SqliteDatabase): void {
    this.#db = db;
  }

  /** Age of the oldest unpublished write in ms (0 when everything is published). */
  lagMs(now: number): number {
    return this.#unshippedSince === undefined ? 0 : Math.max(0, now - this.#unshippedSince);
  }

  /** Bytes of WAL beyond the published cursor (an estimate: frames, not compressed). */
  lagBytes(): number {
    if (this.#unshippedSince === undefined) return 0;
    const wal = WalFile.open(`${this.path}-wal`);
    if (wal === undefined) return 0;
    try {
      const start = startCursor(this.position, wal);
      return typeof start === "string" ? 0 : Math.max(0, wal.size - start.offset);
    } finally {
      wal.close();
    }
  }

  /**
   * Called after a write call committed locally (`changed`: it changed rows or schema outside
   * migrations). Throws the conflict if the tenant was taken; in `sync` mode resolves once the
   * write is published; in `async` mode leaves it to the store's publication job.
   */
  async afterWrite(changed: boolean): Promise<void> {
    if (this.conflict !== undefined) {
      this.conflictSeen = true;
      throw this.conflict;
    }
    if (changed && this.manifest === null && !this.hasContent) {
      this.hasContent = true;
      this.#marking = this.#lock.run(() => this.#save({ ...this.position, dirty: true }));
    }
    // A write committed while the mark is being recorded must not be acknowledged before it
    // is: a crash in between would leave content that no restart knows to publish.
    if (this.#marking !== undefined) await this.#markRecorded(this.#marking);
    if (this.manifest === null && !this.hasContent) return;
    this.#unshippedSince ??= this.#host.clock.now();
    if (this.#host.settings.durability === "sync") return this.durable();
  }

  async #markRecorded(marking: Promise<void>): Promise<void> {
    try {
      await marking;
    } catch (err) {
      // The next write records it again.
      if (this.#marking === marking) {
        this.#marking = undefined;
        if (this.manifest === null) this.hasContent = false;
      }
      throw err;
    }
  }

  /** Marks the copy as possibly holding unpublished commits (found at load), for the publication job. */
  markPending(): void {
    this.#unshippedSince ??= this.#host.clock.now();
  }

  /** True when the publication job should publish this replica now. */
  due(now: number): boolean {
    return this.#unshippedSince !== undefined && now >= this.#retryAt && !this.#closed && this.conflict === undefined;
  }

  /**
   * One background publication (the store's job calls it for due replicas): failures are
   * reported to the host and retried after a pause that doubles per failure, up to 30 s.
   */
  async publishDue(): Promise<boolean> {
    try {
      await this.flush();
      this.#failures = 0;
      this.#retryAt = 0;
      return true;
    } catch (err) {
      this.#host.failed(this.key, err);
      if (this.conflict === undefined) {
        this.#failures += 1;
        this.#retryAt = this.#host.clock.now() + Math.min(FIRST_RETRY_MS * 2 ** (this.#failures - 1), MAX_RETRY_MS);
      }
      return false;
    }
  }

  /** Resolves once a publication round that started after this call succeeded (group commit). */
  durable(): Promise<void> {
    if (this.conflict !== undefined) return Promise.reject(this.conflict);
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      if (!this.#pumping) void this.#pump();
    });
  }

  /** Publishes every committed transaction now (a no-op for a closed or never-written tenant). */
  flush(): Promise<{ transactions: number; bytes: number }> {
    return this.#lock.run(() => this.#shipAll());
  }

  /**
   * Publishes everything, records a clean close and closes the database (whose last
   * connection folds the WAL into the file). A fenced replica closes without publishing and
   * counts what it could not publish. A failed publication throws and leaves it open.
   */
  async close(): Promise<void> {
    // No snapshot may start from here on: it would read the file after the close folded the WAL into it.
    this.#closing = true;
    await this.#snapshotJob;
    await this.#lock.run(async () => {
      if (this.#closed) return;
      if (this.conflict === undefined && (this.manifest !== null || this.hasContent)) {
        try {
          await this.#shipAll();
        } catch (err) {
          if (this.conflict === undefined) {
            this.#closing = false;
            throw err;
          }
        }
      }
      if (this.conflict !== undefined) this.unpublished = this.#countUnpublished();
      else if (this.manifest !== null) await this.#save({ ...this.position, closed: true });
      this.#closed = true;
      try {
        await this.#db?.close();
      } finally {
        this.#closePositionFile();
      }
    });
    this.#rejectWaiters(this.conflict ?? new ClosedError(`tenant ${this.key} was closed`, { op: "tenants.publish" }));
  }

  /** Closes the database without publishing (the store is giving the copy up after a failure). */
  async abandon(): Promise<void> {
    this.#closed = true;
    try {
      await this.#db?.close();
    } finally {
      this.#closePositionFile();
    }
    this.#rejectWaiters(new ClosedError(`tenant ${this.key} was closed`, { op: "tenants.publish" }));
  }

  #rejectWaiters(err: unknown): void {
    const waiters = this.#waiters.splice(0);
    if (waiters.length > 0 && err === this.conflict) this.conflictSeen = true;
    for (const w of waiters) w.reject(err);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#waiters.length > 0) {
        const batch = this.#waiters.splice(0);
        const error = await this.#flushForAck();
        if (error !== undefined && error === this.conflict) this.conflictSeen = true;
        for (const w of batch) {
          if (error === undefined) w.resolve();
          else w.reject(error);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #flushForAck(): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.flush();
        return undefined;
      } catch (err) {
        if (this.conflict !== undefined) return this.conflict;
        // Not acknowledged, but committed locally: the publication job publishes it later.
        if (attempt >= SYNC_ATTEMPTS || this.#closed) return err;
        await new Promise((resolve) => setTimeout(resolve, SYNC_RETRY_MS * 4 ** (attempt - 1)));
      }
    }
  }

  async #shipAll(): Promise<{ transactions: number; bytes: number }> {
    const since = this.#unshippedSince;
    this.#unshippedSince = undefined;
    const started = performance.now();
    let transactions = 0;
    let bytes = 0;
    try {
      for (;;) {
        const round = await this.#shipOnce();
        transactions += round.transactions;
        bytes += round.bytes;
        if (!round.more) break;
      }
    } catch (err) {
      if (since !== undefined) this.#unshippedSince = Math.min(since, this.#unshippedSince ?? since);
      throw this.#asStoreError(err);
    }
    if (transactions > 0 || bytes > 0) {
      const now = this.#host.clock.now();
      this.#host.shipped({
        key: this.key,
        durability: this.#host.settings.durability,
        txid: this.manifest?.txid ?? 0,
        epoch: this.manifest?.epoch ?? 0,
        transactions,
        bytes,
        lagMs: since === undefined ? 0 : Math.max(0, now - since),
        durationMs: performance.now() - started,
      });
      this.#startSnapshotIfDue();
      await this.#checkpointIfDue();
    }
    return { transactions, bytes };
  }

  async #shipOnce(): Promise<Round> {
    if (this.conflict !== undefined) throw this.conflict;
    if (this.#closed) return NOTHING;
    if (this.#ambiguous) await this.#reconcile();
    const wal = WalFile.open(`${this.path}-wal`);
    try {
      const start = startCursor(this.position, wal);
      if (this.manifest === null) {
        if (!this.hasContent) return NOTHING;
        if (this.position.generation === null && this.position.cursor === null)
          return await this.#publishNew(wal, start);
        return await this.#publishImage(wal);
      }
      if (start === "unreadable") return await this.#publishImage(wal);
      if (start === "none" || wal === undefined) return NOTHING;
      const read = wal.readTransactions(start, this.#host.settings.maxSegmentBytes);
      if (read.transactions.length === 0) return NOTHING;
      return await this.#publishSegment(this.manifest, read, wal.header?.pageSize as number);
    } finally {
      wal?.close();
    }
  }

  /** The tenant's first publication: the database file as it was before the WAL, then the WAL's transactions. */
  async #publishNew(wal: WalFile | undefined, start: WalStart): Promise<Round> {
    const generation = randomId();
    const snapshot = await this.#takeSnapshot(undefined, null, 0, generation);
    const read = typeof start === "string" || wal === undefined ? undefined : wal.readTransactions(start);
    const base: Manifest = {
      format: MANIFEST_FORMAT,
      generation,
      epoch: 0,
      writer: this.objects.writer,
      pageSize: snapshot.pageSize,
      txid: 0,
      pages: snapshot.entry.pages,
      time: 0,
      position: null,
      snapshots: [snapshot.entry],
      log: [],
      sinceSnapshot: { bytes: 0, count: 0 },
    };
    if (read === undefined || read.transactions.length === 0) {
      return { ...NOTHING, bytes: snapshot.entry.bytes + (await this.#publish(base, null)) };
    }
    const round = await this.#publishSegment(base, read, wal?.header?.pageSize as number);
    return { ...round, bytes: round.bytes + snapshot.entry.bytes };
  }

  async #publishSegment(base: Manifest, read: WalRead, pageSize: number): Promise<Round> {
    if (pageSize !== base.pageSize) {
      throw new CorruptDatabaseError(`tenant ${this.key}: WAL page size ${pageSize} differs from ${base.pageSize}`, {
        op: "tenants.publish",
      });
    }
    const counters = this.#host.counters;
    const item = await this.objects.writeSegment(
      { pageSize, firstTxid: base.txid + 1, transactions: read.transactions },
      this.#host.clock.now(),
    );
    counters.segments += 1;
    counters.segmentBytes += item.bytes;
    let packBytes = 0;
    const log = await appendToLog(base.log, item, async (level, items) => {
      const pack = await this.objects.writePack(level, items);
      const size = Buffer.byteLength(JSON.stringify(items));
      counters.packs += 1;
      counters.packBytes += size;
      packBytes += size;
      return pack;
    });
    const last = read.transactions[read.transactions.length - 1] as WalRead["transactions"][number];
    const manifestBytes = await this.#publish(
      {
        ...base,
        txid: item.last,
        pages: last.commitPages,
        position: read.end,
        log,
        sinceSnapshot: { bytes: base.sinceSnapshot.bytes + item.bytes, count: base.sinceSnapshot.count + 1 },
      },
      read.end,
    );
    return { transactions: read.transactions.length, bytes: item.bytes + packBytes + manifestBytes, more: read.more };
  }

  /**
   * The frames since the last publication can no longer be read (an outside checkpoint, an
   * unclean close) or the tenant's manifest disappeared: publish an image of everything the
   * local copy holds as one new transaction, starting a new generation.
   */
  async #publishImage(wal: WalFile | undefined): Promise<Round> {
    const header = wal?.header;
    const cursor = header === undefined || wal === undefined ? null : wal.commitsAfter(walStart(header)).end;
    const txid = (this.manifest?.txid ?? this.position.txid) + 1;
    const generation = randomId();
    const snapshot = await this.#takeSnapshot(wal, cursor, txid, generation);
    const m = this.manifest;
    const kept = retain([...(m?.snapshots ?? []), snapshot.entry], m?.log ?? [], this.#cutoff());
    const next: Manifest = {
      format: MANIFEST_FORMAT,
      generation,
      epoch: m?.epoch ?? 0,
      writer: this.objects.writer,
      pageSize: snapshot.pageSize,
      txid,
      pages: snapshot.entry.pages,
      time: 0,
      position: cursor,
      snapshots: kept.snapshots,
      log: kept.log,
      sinceSnapshot: { bytes: 0, count: 0 },
    };
    return { transactions: 1, bytes: snapshot.entry.bytes + (await this.#publish(next, cursor)), more: false };
  }

  /**
   * Writes the manifest conditionally on the one this copy derives from. The writer takes a new
   * epoch on its first publication after hydrating. A refused condition means another writer
   * moved the tenant, unless the stored manifest is exactly this one (a retried request of
   * ours landed first): the replica is then fenced. Any other failure leaves the outcome
   * unknown until the next round reads the manifest back.
   */
  async #publish(next: Manifest, cursor: WalCursor | null): Promise<number> {
    const current = this.manifest;
    const owned = this.position.owned && current !== null;
    const manifest: Manifest = {
      ...next,
      format: MANIFEST_FORMAT,
      epoch: Math.max(owned ? current.epoch : (current?.epoch ?? 0) + 1, this.#minEpoch),
      writer: this.objects.writer,
      time: this.#host.clock.now(),
    };
    await this.#host.ready();
    let written: { etag: string; bytes: number };
    try {
      written = await this.objects.writeManifest(manifest, this.etag);
    } catch (err) {
      if (!isConflict(err)) throw this.#unknownOutcome(err);
      let stored: StoredManifest | null;
      try {
        stored = await this.objects.readManifest();
      } catch (readErr) {
        throw this.#unknownOutcome(readErr);
      }
      if (stored === null || !encodeManifest(stored.manifest).equals(encodeManifest(manifest))) {
        throw this.#fence(stored, err);
      }
      written = { etag: stored.etag, bytes: encodeManifest(manifest).byteLength };
    }
    await this.#adopt(manifest, written, cursor);
    return written.bytes;
  }

  /**
   * Takes the tenant over for an ownership lease with fencing `epoch`, before it is served:
   * the manifest is written again, unchanged but for this writer and `epoch`, on the condition
   * of the one this copy derives from, so an earlier owner's next publication fails even if
   * it has not noticed losing its lease. A tenant never published is published now when
   * `publishNew` (the lease was stolen: its earlier owner could otherwise create it late).
   * Later publications keep at least `epoch`. A refused condition (the manifest moved after
   * this copy was prepared) throws the object store's {@link ConflictError} and does not fence
   * the replica: the caller prepares the tenant again.
   */
  async claim(epoch: number, publishNew: boolean): Promise<void> {
    await this.#lock.run(async () => {
      this.#minEpoch = epoch;
      const current = this.manifest;
      if (current === null) {
        if (!publishNew) return;
        this.hasContent = true;
        await this.#shipAll();
        return;
      }
      if (current.epoch === epoch && current.writer === this.objects.writer && this.position.owned) return;
      const manifest: Manifest = { ...current, epoch, writer: this.objects.writer, time: this.#host.clock.now() };
      await this.#host.ready();
      const written = await this.objects.writeManifest(manifest, this.etag);
      await this.#adopt(manifest, written, this.position.cursor);
    });
  }

  /** Records a manifest this writer just published as the one the copy derives from. */
  async #adopt(manifest: Manifest, written: { etag: string; bytes: number }, cursor: WalCursor | null): Promise<void> {
    this.#host.counters.manifests += 1;
    this.#host.counters.manifestBytes += written.bytes;
    this.manifest = manifest;
    this.etag = written.etag;
    await this.#save({
      generation: manifest.generation,
      epoch: manifest.epoch,
      owned: true,
      txid: manifest.txid,
      manifestEtag: written.etag,
      cursor,
      checkpointed: sameCursor(cursor, this.position.cursor) ? this.position.checkpointed : false,
      closed: false,
      dirty: false,
    });
  }

  /** Backend faults reach callers as {@link UploadFailedError} (cause kept); conflicts and damage as they are. */
  #asStoreError(err: unknown): unknown {
    const passes = ["UPLOAD_FAILED", "CONFLICT", "CORRUPT_DATABASE", "UNSUPPORTED"] as const;
    if (passes.some((code) => isStoreError(err, code))) {
      return err;
    }
    this.#host.counters.failures += 1;
    return new UploadFailedError(`publishing tenant ${this.key} failed: ${(err as Error)?.message ?? err}`, {
      op: "tenants.publish",
      cause: err,
    });
  }

  #unknownOutcome(err: unknown): UploadFailedError {
    this.#ambiguous = true;
    this.#host.counters.failures += 1;
    return new UploadFailedError(`publishing tenant ${this.key} failed: ${(err as Error)?.message ?? err}`, {
      op: "tenants.publish",
      cause: err,
    });
  }

  /** After a publication whose outcome is unknown: adopt the stored manifest if it is ours, else we were fenced. */
  async #reconcile(): Promise<void> {
    const stored = await this.objects.readManifest();
    if ((stored?.etag ?? null) === this.etag) {
      this.#ambiguous = false;
      return;
    }
    const m = stored?.manifest;
    if (
      stored !== null &&
      m !== undefined &&
      m.writer === this.objects.writer &&
      m.epoch >= (this.manifest?.epoch ?? 0) &&
      m.txid >= (this.manifest?.txid ?? 0)
    ) {
      this.manifest = m;
      this.etag = stored.etag;
      this.#ambiguous = false;
      await this.#save(ownPosition(m, stored.etag, this.position));
      return;
    }
    throw this.#fence(stored, undefined);
  }

  #fence(stored: StoredManifest | null, cause: unknown): TenantConflictError {
    this.planned = planConflict(this.#host.cacheRoot, this.#host.clock.now());
    this.remote = stored;
    this.conflict = new TenantConflictError(this.key, this.planned.keptAt, this.planned.id, {
      op: "tenants.publish",
      ...(cause === undefined ? {} : { cause }),
    });
    this.#host.fenced(this.key);
    return this.conflict;
  }

  #startSnapshotIfDue(): void {
    const m = this.manifest;
    if (m === null || this.#snapshotJob !== undefined || this.#closed || this.#closing) return;
    const s = this.#host.settings;
    const latest = m.snapshots[m.snapshots.length - 1] as SnapshotEntry;
    if (m.sinceSnapshot.count === 0) return;
    const bySize = m.sinceSnapshot.bytes >= s.snapshotFraction * Math.max(1, m.pages) * m.pageSize;
    const byTime = s.snapshotIntervalMs > 0 && this.#host.clock.now() - latest.time >= s.snapshotIntervalMs;
    if (!bySize && !byTime) return;
    const at = { cursor: this.position.cursor, txid: m.txid, generation: m.generation, since: m.sinceSnapshot };
    this.#snapshotJob = this.#periodicSnapshot(at).then((published) => {
      this.#snapshotJob = undefined;
      // Publications made while this snapshot ran found it busy and took none of their own.
      if (published) this.#startSnapshotIfDue();
    });
  }

  /**
   * Takes a snapshot at the published position `at` while publication goes on (checkpoints
   * wait: the image is read from the database file and the WAL), then names it in the manifest,
   * applies retention and collects what no manifest needs any more. Resolves true once the
   * snapshot is named in the manifest, false when it was not (failure, conflict, close).
   */
  async #periodicSnapshot(at: {
    cursor: WalCursor | null;
    txid: number;
    generation: string;
    since: Manifest["sinceSnapshot"];
  }): Promise<boolean> {
    try {
      const wal = WalFile.open(`${this.path}-wal`);
      let snapshot: { entry: SnapshotEntry };
      try {
        snapshot = await this.#takeSnapshot(wal, at.cursor, at.txid, at.generation);
      } finally {
        wal?.close();
      }
      const published = await this.#lock.run(async () => {
        const m = this.manifest;
        if (this.conflict !== undefined || this.#closed || m === null) return undefined;
        const kept = retain([...m.snapshots, snapshot.entry], m.log, this.#cutoff());
        const next: Manifest = {
          ...m,
          snapshots: kept.snapshots,
          log: kept.log,
          sinceSnapshot: {
            bytes: Math.max(0, m.sinceSnapshot.bytes - at.since.bytes),
            count: Math.max(0, m.sinceSnapshot.count - at.since.count),
          },
        };
        await this.#publish(next, this.position.cursor);
        return next;
      });
      if (published === undefined) return false;
      await this.#collectGarbage();
      return true;
    } catch (err) {
      if (this.conflict === undefined) this.#host.failed(this.key, this.#asStoreError(err));
      return false;
    }
  }

  async #collectGarbage(): Promise<void> {
    const m = this.manifest;
    if (m === null) return;
    const garbage = await findGarbage(this.objects, m, this.#host.clock.now(), this.#host.settings.orphanGraceMs);
    // Deleted under the lock, against the manifest as it is then: no publication is half done meanwhile.
    await this.#lock.run(async () => {
      if (this.manifest !== m || this.conflict !== undefined) return;
      for (const name of [...garbage.expired, ...garbage.orphans]) {
        await this.objects.store.delete(this.objects.prefix + name);
        this.#host.counters.collected += 1;
      }
    });
  }

  /**
   * Writes and uploads an image of the database as of `upTo`. The database file must not
   * change meanwhile (checkpoints are held back while snapshots run); should another program
   * checkpoint it anyway, the image is discarded ({@link SnapshotMovedError}).
   */
  async #takeSnapshot(
    wal: WalFile | undefined,
    upTo: WalCursor | null,
    txid: number,
    generation: string,
  ): Promise<{ entry: SnapshotEntry; pageSize: number }> {
    const started = performance.now();
    await mkdir(this.#host.tempDir, { recursive: true, mode: 0o700 });
    const tmp = join(this.#host.tempDir, `${randomUUID()}.snapshot`);
    try {
      const before = await fileStamp(this.path);
      if (upTo !== null && wal?.holds(upTo) !== true) throw new SnapshotMovedError(this.key);
      const info = await writeSnapshotFile(this.path, wal, upTo, tmp);
      if ((await fileStamp(this.path)) !== before || (upTo !== null && wal?.holds(upTo) !== true)) {
        throw new SnapshotMovedError(this.key);
      }
      const entry = await this.objects.writeSnapshot(tmp, info, txid, generation, this.#host.clock.now());
      const counters = this.#host.counters;
      counters.snapshots += 1;
      counters.snapshotBytes += info.bytes;
      counters.snapshotMs += performance.now() - started;
      return { entry, pageSize: info.pageSize };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Checkpoints the WAL once the published part of its generation is large, and only when
   * nothing after the published cursor is committed (checked on the writer, so no commit can
   * slip in): the next write then restarts the WAL. Never while a snapshot reads the file.
   */
  async #checkpointIfDue(): Promise<void> {
    const cursor = this.position.cursor;
    const db = this.#db;
    if (this.#snapshotJob !== undefined || cursor === null || db === undefined || this.#closed) return;
    if (cursor.offset < this.#host.settings.walCheckpointBytes) return;
    if (!this.position.checkpointed) await this.#save({ ...this.position, checkpointed: true });
    const walPath = `${this.path}-wal`;
    await db.checkpoint("passive", () => {
      const wal = WalFile.open(walPath);
      if (wal === undefined) return false;
      try {
        return wal.holds(cursor) && !wal.hasCommitsAfter(cursor);
      } finally {
        wal.close();
      }
    });
  }

  #countUnpublished(): number | null {
    const wal = WalFile.open(`${this.path}-wal`);
    try {
      const start = startCursor(this.position, wal);
      if (start === "unreadable") return null;
      if (start === "none" || wal === undefined) return 0;
      return wal.commitsAfter(start).transactions;
    } finally {
      wal?.close();
    }
  }

  #cutoff(): number {
    return this.#host.clock.now() - this.#host.settings.retentionMs;
  }

  async #save(position: ReplicaPosition): Promise<void> {
    this.#positionFile ??= PositionFile.open(this.path, this.position);
    this.#positionFile.write(position);
    this.position = position;
  }

  #closePositionFile(): void {
    this.#positionFile?.close();
    this.#positionFile = undefined;
  }
}

/** The database file changed while a snapshot read it (another program checkpointed it): the image was discarded. */
export class SnapshotMovedError extends UploadFailedError {
  constructor(key: TenantKey) {
    super(`tenant ${key}: the database file changed while a snapshot was taken; it will be taken again`, {
      op: "tenants.snapshot",
    });
  }
}

/** Size, modification time and inode of a file: SQLite writes the database file only when it checkpoints. */
async function fileStamp(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}`;
}

/** A random id for generations and writers: 16 hex digits. */
export function randomId(): string {
  return randomBytes(8).toString("hex");
}
