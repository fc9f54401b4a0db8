import type { LogItem, SnapshotEntry } from "./manifest.js";

/** Items of one level that are folded into a pack one level up. */
export const LOG_FANOUT = 16;

/**
 * Appends a segment to the log and folds full runs into packs, like carries of a base-16
 * counter: whenever the last {@link LOG_FANOUT} items share a level, `writePack` stores them as
 * one object and they are replaced by its item. A manifest therefore names at most 15 items
 * per level, however many segments the log covers.
 */
export async function appendToLog(
  log: readonly LogItem[],
  segment: LogItem,
  writePack: (level: number, items: readonly LogItem[]) => Promise<LogItem>,
): Promise<LogItem[]> {
  const next = [...log, segment];
  for (;;) {
    const tail = next.slice(-LOG_FANOUT);
    const level = tail[0]?.level;
    if (tail.length < LOG_FANOUT || tail.some((item) => item.level !== level)) return next;
    const pack = await writePack((level as number) + 1, tail);
    next.splice(next.length - LOG_FANOUT, LOG_FANOUT, pack);
  }
}

/** The item a pack of `items` is named by (its key and digest given). */
export function packItem(level: number, items: readonly LogItem[], key: string, sha256: string): LogItem {
  const first = items[0] as LogItem;
  const last = items[items.length - 1] as LogItem;
  return {
    level,
    key,
    first: first.first,
    last: last.last,
    bytes: items.reduce((n, i) => n + i.bytes, 0),
    count: items.reduce((n, i) => n + i.count, 0),
    time: last.time,
    sha256,
  };
}

/** Drops the leading items that end at or before transaction `upTo` (they are no longer needed). */
export function pruneLog(log: readonly LogItem[], upTo: number): { kept: LogItem[]; dropped: LogItem[] } {
  let cut = 0;
  while (cut < log.length && (log[cut] as LogItem).last <= upTo) cut++;
  return { kept: log.slice(cut), dropped: log.slice(0, cut) };
}

/**
 * The segments (level-0 items) that hold any transaction in `from..to`, in order, opening
 * the packs on the way with `readPack`.
 */
export async function segmentsIn(
  log: readonly LogItem[],
  from: number,
  to: number,
  readPack: (item: LogItem) => Promise<readonly LogItem[]>,
): Promise<LogItem[]> {
  let items = log.filter((i) => i.last >= from && i.first <= to);
  while (items.some((i) => i.level > 0)) {
    const opened = await mapLimit(items, 16, async (i) =>
      i.level === 0 ? [i] : (await readPack(i)).filter((c) => c.last >= from && c.first <= to),
    );
    items = opened.flat();
  }
  return items;
}

/**
 * Applies retention: orders snapshots by transaction, keeps every one taken at or after
 * `cutoff` plus the newest one before it (the base for restoring the oldest retained moment),
 * and the log items still needed after the oldest kept snapshot. The newest snapshot is always
 * kept.
 */
export function retain(
  snapshots: readonly SnapshotEntry[],
  log: readonly LogItem[],
  cutoff: number,
): { snapshots: SnapshotEntry[]; log: LogItem[] } {
  const ordered = [...snapshots].sort((a, b) => a.txid - b.txid);
  let first = 0;
  for (let i = 0; i < ordered.length; i++) if ((ordered[i] as SnapshotEntry).time < cutoff) first = i;
  const kept = ordered.slice(first);
  return { snapshots: kept, log: pruneLog(log, (kept[0] as SnapshotEntry).txid).kept };
}

/** Visits every item of the log, packs and what they hold, down to the segments. */
export async function walkLog(
  log: readonly LogItem[],
  readPack: (item: LogItem) => Promise<readonly LogItem[]>,
  visit: (item: LogItem) => void,
): Promise<void> {
  let items: readonly LogItem[] = log;
  while (items.length > 0) {
    for (const item of items) visit(item);
    const packs = items.filter((i) => i.level > 0);
    items = (await mapLimit(packs, 16, readPack)).flat();
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
