import {
  BusyError,
  ClosedError,
  ConstraintError,
  CorruptDatabaseError,
  ReadOnlyError,
  StoreError,
  UniqueViolationError,
} from "../../errors.js";

/** Maps a better-sqlite3 error to the storeroom hierarchy, keeping it as `cause`. */
export function mapSqliteError(err: unknown, op: string): unknown {
  if (err instanceof StoreError) return err;
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const options = { op, cause: err };
  if (typeof code !== "string") {
    if (err instanceof TypeError && /database connection is not open/i.test(err.message)) {
      return new ClosedError("database is closed", options);
    }
    if (err instanceof RangeError || err instanceof TypeError) return new StoreError("SQL_ERROR", err.message, options);
    return err;
  }
  if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    return new UniqueViolationError(err.message, options);
  }
  if (code.startsWith("SQLITE_CONSTRAINT")) return new ConstraintError(err.message, options);
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) return new BusyError(err.message, options);
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return new CorruptDatabaseError(err.message, options);
  }
  if (code.startsWith("SQLITE_READONLY")) return new ReadOnlyError(err.message, options);
  return new StoreError("SQL_ERROR", err.message, options);
}
