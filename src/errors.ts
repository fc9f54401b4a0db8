/**
 * The storeroom error hierarchy. Every fault a store raises is a {@link StoreError} with a
 * stable `code`, the operation that failed (`op`) and, for driver errors, the native error as
 * `cause` (its own `code`, e.g. `SQLITE_BUSY` or `23505`, stays reachable there).
 *
 * "Missing" is not an error where a seed says so (`ObjectStore.get` returns `null`); where a
 * seed has a not-found sentinel, {@link NotFoundError} is thrown.
 *
 * @example
 * ```ts
 * try {
 *   await tx.get("users", "ada");
 * } catch (err) {
 *   if (isStoreError(err, "NOT_FOUND")) return undefined;
 *   throw err;
 * }
 * ```
 */

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
  readonly code: string;
  /** The operation that failed, when known. */
  readonly op: string | undefined;

  constructor(code: string, message: string, options: StoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.op = options.op;
  }
}

/** True when `err` is a {@link StoreError}, and, if `code` is given, has that code. */
export function isStoreError(err: unknown, code?: string): err is StoreError {
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

/** An upload claim does not exist, is not in the required state, or is not the caller's. */
export class ClaimNotFoundError extends StoreError {
  constructor(message = "claim not found", options?: StoreErrorOptions) {
    super("CLAIM_NOT_FOUND", message, options);
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
