import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConflictError, InvalidArgumentError } from "../errors.js";
import { type Database, type Executor, takeTransactionLock } from "../sql/index.js";
import { type ArchiveFormat, archiveExtension, compressArchive } from "./archive-codec.js";

/** Options of {@link StateStore.compact}. */
export interface CompactOptions {
  /** Archive journal rows committed strictly before this time (ms or Date). Required. */
  before: number | Date;
  /** Directory of archive files. Default (when absent) `.core/archive`; an empty string throws {@link InvalidArgumentError}. */
  output?: string;
  /** `"gzip"` (default) or `"zstd"`, case-insensitive. */
  format?: string;
  /**
   * Called after each batch of rows is marked archived with the rows marked so far and the
   * rows due (for a progress bar). Not called when nothing is due. When a concurrent
   * compaction archived some of the rows first, counting starts over. Must not throw.
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
export interface NormalizedCompactOptions {
  readonly before: number;
  readonly output: string;
  readonly format: ArchiveFormat;
  readonly onProgress?: (done: number, total?: number) => void;
}

/** Validates and fills defaults; throws {@link InvalidArgumentError}. */
export function normalizeCompactOptions(options: CompactOptions): NormalizedCompactOptions {
  const time = options?.before instanceof Date ? options.before.getTime() : options?.before;
  if (typeof time !== "number" || !Number.isFinite(time)) {
    throw new InvalidArgumentError("compact needs a before time (ms or Date)", { op: "state.compact" });
  }
  // Times are stored as safe integers; a bound beyond them selects the same rows, and PostgreSQL's
  // BIGINT parameter refuses one written as 1e+300.
  const before = Math.min(Math.max(time, Number.MIN_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  const format = (options.format ?? "gzip").trim().toLowerCase();
  if (format !== "gzip" && format !== "zstd") {
    throw new InvalidArgumentError(`compact format must be "gzip" or "zstd", got "${options.format}"`, {
      op: "state.compact",
    });
  }
  if (options.output !== undefined && (typeof options.output !== "string" || options.output.trim() === "")) {
    // Only an absent output means the default: an empty one is a mistake, not ".core/archive".
    throw new InvalidArgumentError(`compact output must be a directory path, got ${JSON.stringify(options.output)}`, {
      op: "state.compact",
    });
  }
  const output = options.output ?? ".core/archive";
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

/** A concurrent compaction marked some of the selected rows first: this attempt rolls back and starts over. */
const LOST_RACE = Symbol("lost race");

/**
 * Writes the non-archived journal rows committed before `before` as compressed JSON lines and
 * marks them archived, each row in exactly one archive even when compactions run at the same
 * time (in one process or several).
 *
 * The archive is staged under a temporary name and fsynced first. Then one transaction marks
 * the rows, guarded by `archived_at IS NULL`: if another compaction marked any of them first,
 * the transaction rolls back, the staged file is removed and the attempt starts over with the
 * rows still due, this time holding the compaction lock from selection to marking (every
 * compaction takes it before marking, so the second attempt cannot lose). Otherwise the file is published under its final name (never replacing an
 * existing file) and the directory fsynced before the marks commit, so a crash never leaves
 * rows marked whose archive is not durably on disk. Rows are read outside the transaction and
 * compressed before it, so writers wait only for the marking.
 */
export async function compactJournal(
  db: Database,
  options: NormalizedCompactOptions,
  now: number,
): Promise<CompactResult> {
  const first = await compactOnce(db, options, now, false);
  if (first !== LOST_RACE) return first;
  // Lost to a concurrent compaction: go again holding the compaction lock from selection to
  // marking. Every compaction takes that lock before marking, so this attempt cannot lose.
  const second = await compactOnce(db, options, now, true);
  if (second !== LOST_RACE) return second;
  throw new ConflictError("compact lost rows to a concurrent compaction twice", { op: "state.compact" });
}

const COMPACT_LOCK = { name: "storeroom.state.compact" };

async function compactOnce(
  db: Database,
  options: NormalizedCompactOptions,
  now: number,
  locked: boolean,
): Promise<CompactResult | typeof LOST_RACE> {
  if (!locked) return archiveRows(db, db, options, now);
  return db
    .transaction(async (tx) => {
      await takeTransactionLock(tx, COMPACT_LOCK);
      return archiveRows(tx, tx, options, now);
    })
    .catch((err: unknown) => {
      if (err === LOST_RACE) return LOST_RACE;
      throw err;
    });
}

/** Selects the due rows on `reader`, stages their archive, and marks and publishes in a transaction of `writer`. */
async function archiveRows(
  reader: Executor,
  writer: Executor,
  options: NormalizedCompactOptions,
  now: number,
): Promise<CompactResult | typeof LOST_RACE> {
  const rows = await reader.all<JournalDbRow>(
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
  const staging = join(options.output, `.staging-${process.pid}-${randomBytes(6).toString("hex")}`);
  writeDurably(staging, data);
  let path: string | undefined;
  try {
    await writer.transaction(async (tx) => {
      await takeTransactionLock(tx, COMPACT_LOCK);
      for (let i = 0; i < rows.length; i += 500) {
        const ids = rows.slice(i, i + 500).map((r) => r.entry_id);
        const list = ids.map((_, j) => `$${j + 2}`).join(", ");
        const { changes } = await tx.run(
          `UPDATE journal_entries SET archived_at = $1 WHERE archived_at IS NULL AND entry_id IN (${list})`,
          [now, ...ids],
        );
        if (changes !== ids.length) throw LOST_RACE;
        options.onProgress?.(i + ids.length, rows.length);
      }
      path = publish(staging, options.output, `journal-${stamp(now)}`, archiveExtension(options.format));
    });
  } catch (err) {
    if (path !== undefined) rmSync(path, { force: true });
    if (err === LOST_RACE) return LOST_RACE;
    throw err;
  } finally {
    rmSync(staging, { force: true });
  }
  return { path: path as string, rows: rows.length };
}

/**
 * Gives the staged file its final name: `<base><ext>`, or `<base>-<n><ext>` when another process
 * (or an earlier run with the same clock) used the name. A hard link never replaces an existing
 * file, unlike a rename. The directory is fsynced so the name survives a crash.
 */
function publish(staging: string, dir: string, base: string, ext: string): string {
  for (let i = 0; ; i++) {
    const path = join(dir, i === 0 ? `${base}${ext}` : `${base}-${i}${ext}`);
    try {
      linkSync(staging, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw err;
    }
    rmSync(staging, { force: true });
    fsyncDirectory(dir);
    return path;
  }
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
