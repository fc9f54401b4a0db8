import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "../errors.js";
import type { Database } from "../sql/index.js";
import { type ArchiveFormat, archiveExtension, compressArchive } from "./archive-codec.js";

/** Options of {@link StateStore.compact}. */
export interface CompactOptions {
  /** Archive journal rows committed strictly before this time (ms or Date). Required. */
  before: number | Date;
  /** Directory of archive files. Default `.core/archive`. */
  output?: string;
  /** `"gzip"` (default) or `"zstd"`, case-insensitive. */
  format?: string;
  /**
   * Called after each batch of rows is marked archived with the rows marked so far and the
   * rows due (for a progress bar). Not called when nothing is due. Must not throw.
   */
  onProgress?: (done: number, total?: number) => void;
}

/** What {@link StateStore.compact} did. */
export interface CompactResult {
  /** The archive file, or `null` when no row was due. */
  readonly path: string | null;
  /** Rows written and marked archived. */
  readonly rows: number;
}

/** Validated {@link CompactOptions}. */
export interface NormalisedCompactOptions {
  readonly before: number;
  readonly output: string;
  readonly format: ArchiveFormat;
  readonly onProgress?: (done: number, total?: number) => void;
}

/** Validates and fills defaults; throws {@link InvalidArgumentError}. */
export function normaliseCompactOptions(options: CompactOptions): NormalisedCompactOptions {
  const before = options?.before instanceof Date ? options.before.getTime() : options?.before;
  if (typeof before !== "number" || !Number.isFinite(before)) {
    throw new InvalidArgumentError("compact needs a before time (ms or Date)", { op: "state.compact" });
  }
  const format = (options.format ?? "gzip").trim().toLowerCase();
  if (format !== "gzip" && format !== "zstd") {
    throw new InvalidArgumentError(`compact format must be "gzip" or "zstd", got "${options.format}"`, {
      op: "state.compact",
    });
  }
  const output = (options.output ?? "").trim() === "" ? ".core/archive" : (options.output as string);
  return options.onProgress === undefined
    ? { before, output, format }
    : { before, output, format, onProgress: options.onProgress };
}

interface JournalDbRow {
  entry_id: number;
  bucket_name: string;
  measurement: string;
  fields_json: string;
  tags_json: string;
  committed_at: number;
}

/**
 * Writes the non-archived journal rows committed before `before` as compressed JSON lines and
 * marks them archived. The archive is staged under a temporary name, fsynced, renamed and the
 * directory fsynced before the rows are marked, so a crash never marks rows whose archive is
 * not durably on disk; if marking fails the archive is removed again.
 */
export async function compactJournal(
  db: Database,
  options: NormalisedCompactOptions,
  now: number,
): Promise<CompactResult> {
  const rows = await db.all<JournalDbRow>(
    "SELECT entry_id, bucket_name, measurement, fields_json, tags_json, committed_at FROM journal_entries " +
      "WHERE archived_at IS NULL AND committed_at < $1 ORDER BY committed_at, entry_id",
    [Math.ceil(options.before)],
  );
  if (rows.length === 0) return { path: null, rows: 0 };
  const lines = rows.map((r) =>
    JSON.stringify({
      bucket: r.bucket_name,
      measurement: r.measurement,
      fields: JSON.parse(r.fields_json),
      tags: JSON.parse(r.tags_json),
      committed_at: Number(r.committed_at),
    }),
  );
  const data = await compressArchive(Buffer.from(`${lines.join("\n")}\n`), options.format);
  mkdirSync(options.output, { recursive: true });
  let path = join(options.output, `journal-${stamp(now)}${archiveExtension(options.format)}`);
  // Another process (or an earlier run with the same clock) may have used the name already.
  for (let i = 1; existsSync(path); i++) {
    path = join(options.output, `journal-${stamp(now)}-${i}${archiveExtension(options.format)}`);
  }
  const staging = `${path}.tmp-${process.pid}`;
  writeDurably(staging, data);
  renameSync(staging, path);
  fsyncDirectory(options.output);
  try {
    await db.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 500) {
        const ids = rows.slice(i, i + 500).map((r) => r.entry_id);
        const list = ids.map((_, j) => `$${j + 2}`).join(", ");
        await tx.run(`UPDATE journal_entries SET archived_at = $1 WHERE entry_id IN (${list})`, [now, ...ids]);
        options.onProgress?.(i + ids.length, rows.length);
      }
    });
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
  return { path, rows: rows.length };
}

function writeDurably(path: string, data: Uint8Array): void {
  const fd = openSync(path, "wx");
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `YYYYMMDD-HHMMSS.<nanos>` in UTC, unique per call within a process. */
let lastStamp = "";
let sequence = 0;
function stamp(now: number): string {
  const d = new Date(now);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const base = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  const nanos = `${p(d.getUTCMilliseconds(), 3)}000000`;
  const s = `${base}.${nanos}`;
  sequence = s === lastStamp ? sequence + 1 : 0;
  lastStamp = s;
  return sequence === 0 ? s : `${s}-${sequence}`;
}
