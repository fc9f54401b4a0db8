/**
 * The storeroom error hierarchy. Every fault a store raises is a {@link StoreError} with a
 * stable {@link StoreErrorCode}, the operation that failed (`op`) and, for driver errors, the
 * native error as `cause` (its own `code`, e.g. `SQLITE_BUSY` or `23505`, stays reachable there).
 *
 * "Missing" is a value where a caller routinely asks about something that may not exist
 * (`ObjectStore.get` returns `null`, `StateStore.get` returns `undefined`); it is a
 * {@link NotFoundError} where the caller named something that must exist (a claim, a file, a
 * tenant). `docs/errors.md` lists each API.
 *
 * @example
 * ```ts
 * try {
 *   await uploads.completeUpload(claimId, userId);
 * } catch (err) {
 *   if (isStoreError(err, "CLAIM_NOT_FOUND")) return undefined;
 *   throw err;
 * }
 * ```
 */

/**
 * Every code a {@link StoreError} can carry. Codes never change meaning between versions; a
 * new code is a new member of this union (and a CHANGELOG entry).
 */
export type StoreErrorCode =
  | "ACCESS_DENIED"
  | "BUSY"
  | "CHECKSUM_MISMATCH"
  | "CLAIM_NOT_FOUND"
  | "CLOSED"
  | "CONFLICT"
  | "CONSTRAINT"
  | "CORRUPT_DATABASE"
  | "DUPLICATE_DRIVER"
  | "DUPLICATE_ID"
  | "DUPLICATE_MIGRATION"
  | "INVALID_ARGUMENT"
  | "INVALID_KEY"
  | "LIMIT_EXCEEDED"
  | "MIGRATION_OUT_OF_ORDER"
  | "MISSING_DEPENDENCY"
  | "NOT_FOUND"
  | "QUOTA_EXCEEDED"
  | "READ_ONLY"
  | "SQL_ERROR"
  | "TIMEOUT"
  | "TOO_LARGE"
  | "TRANSACTION"
  | "UNAUTHENTICATED"
  | "UNIQUE_VIOLATION"
  | "UNKNOWN_DRIVER"
  | "UNKNOWN_PEER"
  | "UNSUPPORTED"
  | "UPLOAD_FAILED"
  | "VERSION_CONFLICT";

/** Options shared by every {@link StoreError} constructor. */
export interface StoreErrorOptions {
  /** The operation that failed, e.g. `"kv.get"` or `"sql.run"`. */
  op?: string;
  /** The underlying error, e.g. a better-sqlite3 `SqliteError` or a `pg` `DatabaseError`. */
  cause?: unknown;
}

/** Base class of every error storeroom throws on purpose. */
export class StoreError extends Error {
  /** A stable, machine-readable code such as `"NOT_FOUND"`; never changes between versions. */
  readonly code: StoreErrorCode;
  /** The operation that failed, when known. */
  readonly op: string | undefined;

  constructor(code: StoreErrorCode, message: string, options: StoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.op = options.op;
  }
}

/**
 * True when `err` is a {@link StoreError}, and, if `code` is given, has exactly that code. To
 * match a family (a {@link ClaimNotFoundError} is also a {@link NotFoundError}), use
 * `instanceof`.
 */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

/** A key, row, claim or object that the operation needs does not exist. */
export class NotFoundError extends StoreError {
  constructor(message = "not found", options?: StoreErrorOptions) {
    super("NOT_FOUND", message, options);
  }
}

/** The store, database or handle was closed before or during the call. */
export class ClosedError extends StoreError {
  constructor(message = "store is closed", options?: StoreErrorOptions) {
    super("CLOSED", message, options);
  }
}

/** A write would exceed a scoped store's key or group limit; `limit` names which. */
export class QuotaExceededError extends StoreError {
  readonly limit: "keys" | "groups";
  readonly max: number;
  constructor(limit: "keys" | "groups", max: number, options?: StoreErrorOptions) {
    super("QUOTA_EXCEEDED", `quota exceeded: ${limit === "keys" ? "key" : "group"} limit (${max})`, options);
    this.limit = limit;
    this.max = max;
  }
}

/** A message or row with this id already exists; the existing row was left untouched. */
export class DuplicateIdError extends StoreError {
  constructor(message = "duplicate id", options?: StoreErrorOptions) {
    super("DUPLICATE_ID", message, options);
  }
}

/** The recipient (or named peer) was never registered. */
export class UnknownPeerError extends StoreError {
  constructor(message = "unknown peer", options?: StoreErrorOptions) {
    super("UNKNOWN_PEER", message, options);
  }
}

/** A write was attempted inside a read-only transaction; nothing was written. */
export class ReadOnlyError extends StoreError {
  constructor(message = "transaction is read-only", options?: StoreErrorOptions) {
    super("READ_ONLY", message, options);
  }
}

/** An applied migration was reordered or removed from its set. */
export class MigrationOutOfOrderError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("MIGRATION_OUT_OF_ORDER", message, options);
  }
}

/** A migration id was added twice to one set. */
export class DuplicateMigrationError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("DUPLICATE_MIGRATION", message, options);
  }
}

/** No driver is registered under the requested name; the message lists the registered ones. */
export class UnknownDriverError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("UNKNOWN_DRIVER", message, options);
  }
}

/** A driver name was registered twice. */
export class DuplicateDriverError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("DUPLICATE_DRIVER", message, options);
  }
}

/**
 * An upload claim does not exist, has expired, is not in the required state, or is not the
 * caller's. A {@link NotFoundError} with its own code, `CLAIM_NOT_FOUND`.
 */
export class ClaimNotFoundError extends NotFoundError {
  override readonly code: StoreErrorCode = "CLAIM_NOT_FOUND";
  constructor(message = "claim not found", options?: StoreErrorOptions) {
    super(message, options);
  }
}

/** A file that should be a SQLite database is not one; it was not opened. */
export class CorruptDatabaseError extends StoreError {
  constructor(message = "not a SQLite database", options?: StoreErrorOptions) {
    super("CORRUPT_DATABASE", message, options);
  }
}

/** Uploading to object storage failed; local data was kept. The backend error is `cause`. */
export class UploadFailedError extends StoreError {
  constructor(message = "upload failed", options?: StoreErrorOptions) {
    super("UPLOAD_FAILED", message, options);
  }
}

/** A conditional write lost: the object or row changed since it was read. */
export class ConflictError extends StoreError {
  constructor(message = "conflict", options?: StoreErrorOptions) {
    super("CONFLICT", message, options);
  }
}

/** A version check failed: an entry changed (or appeared, or vanished) since it was read. */
export interface VersionMismatch {
  readonly group: string;
  readonly key: string;
  /** The version the check expected; `null` = expected absent. */
  readonly expected: number | null;
  /** The entry's current version; `null` = absent (or expired). */
  readonly actual: number | null;
}

/**
 * A conditional write (`ifVersion`, `batch` checks, HTTP `If-Match`) found an entry at another
 * version than expected; nothing was written. `mismatches` lists every failed check. A
 * {@link ConflictError} with its own code, `VERSION_CONFLICT`.
 */
export class VersionConflictError extends ConflictError {
  override readonly code: StoreErrorCode = "VERSION_CONFLICT";
  /** Every check that failed. */
  readonly mismatches: readonly VersionMismatch[];

  constructor(mismatches: readonly VersionMismatch[], options?: StoreErrorOptions) {
    const first = mismatches[0];
    const what =
      first === undefined
        ? "version check failed"
        : `${first.group}/${first.key} is at version ${first.actual ?? "absent"}, expected ${first.expected ?? "absent"}`;
    super(mismatches.length > 1 ? `${what} (and ${mismatches.length - 1} more)` : what, options);
    this.mismatches = Object.freeze([...mismatches]);
  }
}

/** A key, name, namespace or path is malformed or tries to escape its root. */
export class InvalidKeyError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("INVALID_KEY", message, options);
  }
}

/** An argument or configuration value is invalid; nothing was changed. */
export class InvalidArgumentError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/**
 * A template did not parse, or failed while executing. The message is Go `text/template`'s
 * (`template: NAME:LINE: ...` when parsing, `template: NAME:LINE:COL: executing ...` when
 * executing); `line` (1-based) and `column` (0-based byte offset in the line, as Go counts)
 * locate the problem, and `output` is what the execution produced before it failed (what Go's
 * `Execute` has written to its writer by then; `""` for a parse error). An
 * {@link InvalidArgumentError}.
 */
export class TemplateError extends InvalidArgumentError {
  /** 1-based line of the problem. */
  readonly line: number;
  /** 0-based byte offset of the problem within its line. */
  readonly column: number;
  /** The output produced before an execution error; `""` for a parse error. */
  readonly output: string;

  constructor(message: string, line: number, column: number, options?: StoreErrorOptions, output = "") {
    super(message, options);
    this.line = line;
    this.column = column;
    this.output = output;
  }
}

/** A unique or primary-key constraint rejected a write. */
export class UniqueViolationError extends StoreError {
  constructor(message = "unique constraint violated", options?: StoreErrorOptions) {
    super("UNIQUE_VIOLATION", message, options);
  }
}

/** A foreign-key, check or not-null constraint rejected a write. */
export class ConstraintError extends StoreError {
  constructor(message = "constraint violated", options?: StoreErrorOptions) {
    super("CONSTRAINT", message, options);
  }
}

/** The database is locked by another process or connection, or a serialization check failed; retrying may succeed. */
export class BusyError extends StoreError {
  constructor(message = "database is busy", options?: StoreErrorOptions) {
    super("BUSY", message, options);
  }
}

/** A transaction handle was misused: used after it finished, or the outer database was called from inside it. */
export class TransactionError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("TRANSACTION", message, options);
  }
}

/** The operation, query form or option is not supported by this backend; the message names the part. */
export class UnsupportedError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("UNSUPPORTED", message, options);
  }
}

/** Received bytes do not match the checksum the client sent with them; none of them were kept. */
export class ChecksumMismatchError extends InvalidArgumentError {
  override readonly code: StoreErrorCode = "CHECKSUM_MISMATCH";
}

/** A value exceeds a size limit (frame, body, value or file). */
export class TooLargeError extends StoreError {
  constructor(message: string, options?: StoreErrorOptions) {
    super("TOO_LARGE", message, options);
  }
}

/** The caller is not allowed to perform this operation on this resource. */
export class AccessDeniedError extends StoreError {
  constructor(message = "access denied", options?: StoreErrorOptions) {
    super("ACCESS_DENIED", message, options);
  }
}

/** The request carries no credentials, or credentials that are unknown, expired or not trusted. */
export class UnauthenticatedError extends StoreError {
  constructor(message = "missing or invalid credentials", options?: StoreErrorOptions) {
    super("UNAUTHENTICATED", message, options);
  }
}

/** A per-principal limit (e.g. the cap on unfinished uploads) would be exceeded; nothing was created. */
export class LimitExceededError extends StoreError {
  readonly max: number;
  constructor(message: string, max: number, options?: StoreErrorOptions) {
    super("LIMIT_EXCEEDED", message, options);
    this.max = max;
  }
}

/**
 * An optional package that this feature needs is not installed; `packageName` names it, and
 * the message gives the `npm install` line that fixes it. An {@link UnsupportedError} with its
 * own code, `MISSING_DEPENDENCY`.
 */
export class MissingDependencyError extends UnsupportedError {
  override readonly code: StoreErrorCode = "MISSING_DEPENDENCY";
  /** The npm package to install (the first, when several are missing). */
  readonly packageName: string;
  /** Every package to install. */
  readonly packageNames: readonly string[];
  constructor(packageName: string | readonly string[], feature: string, options?: StoreErrorOptions) {
    const names = typeof packageName === "string" ? [packageName] : [...packageName];
    const quoted = names.map((n) => `"${n}"`).join(", ");
    super(
      `${feature} needs the optional package${names.length > 1 ? "s" : ""} ${quoted}: run npm install ${names.join(" ")}`,
      options,
    );
    this.packageName = names[0] ?? "";
    this.packageNames = Object.freeze(names);
  }
}
