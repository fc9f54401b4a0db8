import { InvalidArgumentError, ReadOnlyError } from "../errors.js";
import type { Executor, Row, SqlValue } from "../sql/index.js";
import { matchesEqualities, parseFlux } from "./flux-query.js";

/** What {@link StateStore.commitToJournal} wrote. */
export interface JournalCommit {
  readonly bucket: string;
  readonly measurement: string;
  readonly fields: Record<string, unknown>;
  readonly tags: Record<string, string>;
  readonly committedAt: number;
}

/**
 * A journal row as returned by {@link StateStore.queryJournal}: the table's columns
 * (`entry_id`, `bucket_name`, `measurement`, `fields_json`, `tags_json`, `committed_at`,
 * `archived_at`, or whatever a raw SQL query selects), plus `fields` and `tags` parsed from the
 * JSON columns when they are present.
 */
export type JournalRow = Row & { fields?: Record<string, unknown>; tags?: Record<string, string> };

/** Inserts one journal row through `ex` (a database or a transaction). */
export async function insertJournalRow(
  ex: Executor,
  bucket: string,
  measurement: string,
  fields: Record<string, unknown> | null | undefined,
  tags: Record<string, string> | null | undefined,
  committedAt: number,
): Promise<JournalCommit> {
  const op = "state.commitToJournal";
  checkMeasurement(ex, measurement);
  // Spreading an array or a string would store its indexes as field names.
  if (!isRecordOrAbsent(fields)) throw new InvalidArgumentError("fields must be an object, null or absent", { op });
  if (!isRecordOrAbsent(tags)) throw new InvalidArgumentError("tags must be an object, null or absent", { op });
  const f = { ...(fields ?? {}) };
  const t = { ...(tags ?? {}) };
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== "string") {
      throw new InvalidArgumentError(`tag "${k}" must be a string`, { op: "state.commitToJournal" });
    }
  }
  await ex.run(
    "INSERT INTO journal_entries (bucket_name, measurement, fields_json, tags_json, committed_at) VALUES ($1, $2, $3, $4, $5)",
    [bucket, measurement, toJson(f, "state.commitToJournal"), JSON.stringify(t), committedAt],
  );
  return { bucket, measurement, fields: f, tags: t, committedAt };
}

const COLUMNS = "entry_id, bucket_name, measurement, fields_json, tags_json, committed_at, archived_at";
const SQL_QUERY = /^\s*(select|with)\b/i;
const SQL_WRITE =
  /^\s*(insert|update|delete|replace|create|drop|alter|pragma|attach|detach|vacuum|reindex|analyze|begin|commit|rollback|savepoint|release|truncate|grant|copy|explain)\b/i;

/**
 * Runs a journal query: `""` -> every non-archived row in commit order; a `SELECT`/`WITH`
 * statement -> raw SQL in a read-only transaction (writes throw {@link ReadOnlyError}); anything
 * else -> the Flux subset of {@link parseFlux} (archived rows excluded).
 */
export async function queryJournal(db: Executor, query: string, now: number): Promise<JournalRow[]> {
  if (typeof query !== "string") {
    throw new InvalidArgumentError("query must be a string", { op: "state.queryJournal" });
  }
  if (query.trim() === "") {
    return inflate(
      await db.all(`SELECT ${COLUMNS} FROM journal_entries WHERE archived_at IS NULL ORDER BY committed_at, entry_id`),
    );
  }
  if (SQL_WRITE.test(query)) {
    throw new ReadOnlyError("queryJournal runs only read-only SELECT or WITH statements", { op: "state.queryJournal" });
  }
  if (SQL_QUERY.test(query)) {
    return inflate(await db.transaction((tx) => tx.all(query), { readOnly: true }));
  }
  const flux = parseFlux(query, now);
  const where = ["archived_at IS NULL"];
  const params: SqlValue[] = [];
  const bind = (v: SqlValue) => {
    params.push(v);
    return `$${params.length}`;
  };
  for (const b of flux.buckets) where.push(`bucket_name = ${bind(b)}`);
  for (const m of flux.measurements) where.push(`measurement = ${bind(m)}`);
  if (flux.start !== undefined) where.push(`committed_at >= ${bind(Math.floor(flux.start))}`);
  if (flux.stop !== undefined) where.push(`committed_at < ${bind(Math.ceil(flux.stop))}`);
  const rows = inflate(
    await db.all(
      `SELECT ${COLUMNS} FROM journal_entries WHERE ${where.join(" AND ")} ORDER BY committed_at, entry_id`,
      params,
    ),
  );
  return rows.filter((r) => matchesEqualities(flux.equalities, r.fields ?? {}, r.tags ?? {}));
}

function inflate(rows: Row[]): JournalRow[] {
  return rows.map((row) => {
    const out: JournalRow = { ...row };
    if (typeof row.fields_json === "string") out.fields = JSON.parse(row.fields_json) as Record<string, unknown>;
    if (typeof row.tags_json === "string") out.tags = JSON.parse(row.tags_json) as Record<string, string>;
    return out;
  });
}

/** A non-empty string each engine stores as it is: well-formed Unicode, and without U+0000 where TEXT cannot hold it (PostgreSQL). */
function checkMeasurement(ex: Executor, measurement: string): void {
  const op = "state.commitToJournal";
  if (typeof measurement !== "string" || measurement === "") {
    throw new InvalidArgumentError("measurement must be a non-empty string", { op });
  }
  if (!measurement.isWellFormed()) {
    throw new InvalidArgumentError("measurement must be well-formed Unicode (a lone surrogate cannot be stored)", {
      op,
    });
  }
  if (!ex.dialect.textAllowsNul && measurement.includes("\u0000")) {
    throw new InvalidArgumentError("measurement must not contain U+0000 (PostgreSQL text cannot hold it)", { op });
  }
}

function isRecordOrAbsent(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "object" && !Array.isArray(value));
}

/** JSON-encodes `value`; values JSON cannot hold (BigInt, cycles) throw {@link InvalidArgumentError}. */
export function toJson(value: unknown, op: string): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new InvalidArgumentError(`value cannot be encoded as JSON: ${(err as Error).message}`, { op, cause: err });
  }
}
