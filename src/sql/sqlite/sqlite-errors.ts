import {
  BusyError,
  ClosedError,
  ConstraintError,
  CorruptDatabaseError,
  ReadOnlyError,
  StoreError,
  UniqueViolationError,
} from "../../errors.js";

// The SQLite result codes storeroom tells apart; node:sqlite reports them as numbers (`errcode`).
const PRIMARY_CODES: Record<number, string> = {
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  11: "SQLITE_CORRUPT",
  19: "SQLITE_CONSTRAINT",
  26: "SQLITE_NOTADB",
};
const EXTENDED_CODES: Record<number, string> = {
  1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
  2067: "SQLITE_CONSTRAINT_UNIQUE",
};

/** Maps a better-sqlite3 or node:sqlite error to the storeroom hierarchy, keeping it as `cause`. */
export function mapSqliteError(err: unknown, op: string): unknown {
  if (err instanceof StoreError) return err;
  if (!(err instanceof Error)) return err;
  const options = { op, cause: err };
  const code = sqliteCode(err);
  if (typeof code !== "string") {
    if (err instanceof TypeError && /database connection is not open/i.test(err.message)) {
      return new ClosedError("database is closed", options);
    }
    if (err instanceof RangeError || err instanceof TypeError) return new StoreError("SQL_ERROR", err.message, options);
    return err;
  }
  if (code === "SQLITE_MISUSE_CLOSED") return new ClosedError("database is closed", options);
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

/** better-sqlite3's `code` (`SQLITE_CONSTRAINT_UNIQUE`...), or the same name built from node:sqlite's numeric `errcode`. */
function sqliteCode(err: Error): unknown {
  const { code, errcode } = err as { code?: unknown; errcode?: unknown };
  if (code === "ERR_INVALID_STATE" && /is not open|has been finalized/.test(err.message)) {
    return "SQLITE_MISUSE_CLOSED";
  }
  if (code !== "ERR_SQLITE_ERROR" || typeof errcode !== "number") return code;
  return EXTENDED_CODES[errcode] ?? PRIMARY_CODES[errcode & 0xff] ?? `SQLITE_ERROR_${errcode}`;
}
