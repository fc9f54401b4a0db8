import { type FileHandle, open, rm } from "node:fs/promises";
import { CorruptDatabaseError, InvalidArgumentError } from "../errors.js";
import type { LogItem, Manifest, SnapshotEntry } from "./manifest.js";
import { segmentsIn } from "./manifest-log.js";
import type { ReplicaObjects } from "./replica-objects.js";
import type { Segment } from "./segment-codec.js";
import { headerPageSize } from "./snapshot-file.js";

/** Segments downloaded ahead of the one being applied. */
const DOWNLOAD_WINDOW = 16;
/** Distinct pages held in memory before they are written out (32 MiB of 4 KiB pages). */
const FLUSH_PAGES = 8192;

/** What a restore produced. */
export interface RestoredDatabase {
  /** The transaction the file is at. */
  readonly txid: number;
  readonly pages: number;
  readonly pageSize: number;
  /** The snapshot it started from and the segments applied on top. */
  readonly snapshot: SnapshotEntry;
  readonly segments: number;
  /** Stored bytes downloaded. */
  readonly bytes: number;
}

/** The newest snapshot at or before `txid` (`undefined` when `txid` is older than retention). */
export function baseSnapshot(manifest: Manifest, txid: number): SnapshotEntry | undefined {
  let base: SnapshotEntry | undefined;
  for (const s of manifest.snapshots) if (s.txid <= txid && (base === undefined || s.txid > base.txid)) base = s;
  return base;
}

/**
 * Rebuilds the database as it was after transaction `txid` into `path` (which must not exist):
 * the newest snapshot at or before it, then every later transaction up to `txid` from the
 * segments, each verified (digest, transaction ids, contiguity), page images written in
 * order and the file cut to the size the last commit recorded. Header and size are checked
 * at the end. {@link InvalidArgumentError} when `txid` is outside what the manifest retains,
 * {@link CorruptDatabaseError} when an object is missing or damaged (`path` is removed).
 */
export async function restoreDatabase(
  objects: ReplicaObjects,
  manifest: Manifest,
  txid: number,
  path: string,
): Promise<RestoredDatabase> {
  if (!Number.isSafeInteger(txid) || txid < 0 || txid > manifest.txid) {
    throw new InvalidArgumentError(`transaction ${txid} is not in ${objects.prefix} (last is ${manifest.txid})`, {
      op: "tenants.restore",
    });
  }
  const snapshot = baseSnapshot(manifest, txid);
  if (snapshot === undefined) {
    throw new InvalidArgumentError(
      `transaction ${txid} of ${objects.prefix} is older than retention (oldest snapshot: ${manifest.snapshots[0]?.txid})`,
      { op: "tenants.restore" },
    );
  }
  try {
    await objects.readSnapshot(snapshot, manifest.pageSize, path);
    const items =
      txid > snapshot.txid ? await segmentsIn(manifest.log, snapshot.txid + 1, txid, (i) => objects.readPack(i)) : [];
    let bytes = snapshot.bytes;
    let next = snapshot.txid + 1;
    let pages = snapshot.pages;
    const file = await open(path, "r+");
    try {
      // The newest image of each page since the last flush: a page rewritten by many transactions is written once.
      const pending = new Map<number, Buffer>();
      const downloads: Promise<Segment>[] = [];
      const fetch = (i: number): void => {
        const item = items[i];
        if (item === undefined) return;
        const download = objects.readSegment(item);
        // Awaited in order below; a failure ahead of that point must not count as unhandled.
        download.catch(() => undefined);
        downloads.push(download);
      };
      for (let i = 0; i < DOWNLOAD_WINDOW; i++) fetch(i);
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as LogItem;
        const segment = await (downloads.shift() as Promise<Segment>);
        fetch(i + DOWNLOAD_WINDOW);
        bytes += item.bytes;
        if (segment.pageSize !== manifest.pageSize) throw corrupt(`${item.key} has page size ${segment.pageSize}`);
        if (segment.firstTxid > next) {
          throw corrupt(`${objects.prefix} has no transaction ${next} (next segment starts at ${segment.firstTxid})`);
        }
        for (let t = 0; t < segment.transactions.length && next <= txid; t++) {
          const id = segment.firstTxid + t;
          if (id < next) continue;
          const tx = segment.transactions[t] as Segment["transactions"][number];
          for (const frame of tx.frames) pending.set(frame.pgno, frame.data);
          pages = tx.commitPages;
          next = id + 1;
        }
        if (pending.size >= FLUSH_PAGES) await flushPages(file, pending, manifest.pageSize);
      }
      await flushPages(file, pending, manifest.pageSize);
      if (next !== txid + 1) throw corrupt(`${objects.prefix} ends at transaction ${next - 1}, before ${txid}`);
      await file.truncate(pages * manifest.pageSize);
      await file.sync();
      const head = Buffer.alloc(18);
      await file.read(head, 0, 18, 0);
      if (pages > 0 && headerPageSize(head) !== manifest.pageSize) {
        throw corrupt(`restored ${objects.prefix} at ${txid} has no valid database header`);
      }
    } finally {
      await file.close();
    }
    return { txid, pages, pageSize: manifest.pageSize, snapshot, segments: items.length, bytes };
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}

/** Writes the held pages in page order, runs of adjacent pages in one call, and forgets them. */
async function flushPages(file: FileHandle, pages: Map<number, Buffer>, pageSize: number): Promise<void> {
  const order = [...pages.keys()].sort((a, b) => a - b);
  for (let i = 0; i < order.length; ) {
    let j = i + 1;
    while (j < order.length && (order[j] as number) === (order[j - 1] as number) + 1 && j - i < 256) j++;
    const run = order.slice(i, j).map((pgno) => pages.get(pgno) as Buffer);
    await file.writev(run, ((order[i] as number) - 1) * pageSize);
    i = j;
  }
  pages.clear();
}

function corrupt(message: string): CorruptDatabaseError {
  return new CorruptDatabaseError(message, { op: "tenants.restore" });
}
