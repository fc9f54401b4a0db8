import {
  BusyError,
  ClosedError,
  ConstraintError,
  ReadOnlyError,
  StoreError,
  UniqueViolationError,
} from "../../errors.js";

/** SQLSTATEs after which retrying the whole transaction may succeed. */
const RETRYABLE = new Set(["40001", "40P01", "55P03"]);

/** Maps a `pg` error to the storeroom hierarchy by SQLSTATE, keeping it as `cause`. */
export function mapPostgresError(err: unknown, op: string): unknown {
  if (err instanceof StoreError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  const options = { op, cause: err };
  if (typeof code !== "string") {
    if (/pool after calling end|Client was closed|Connection terminated/i.test(err.message)) {
      return new ClosedError("database is closed", options);
    }
    return new StoreError("SQL_ERROR", err.message, options);
  }
  if (code === "23505") return new UniqueViolationError(err.message, options);
  if (code.startsWith("23")) return new ConstraintError(err.message, options);
  if (RETRYABLE.has(code)) return new BusyError(err.message, options);
  if (code === "25006") return new ReadOnlyError(err.message, options);
  return new StoreError("SQL_ERROR", err.message, options);
}

/** True when `err` (or its cause) says the transaction lost a serialization check or a deadlock and can be retried. */
export function isRetryableTransactionError(err: unknown): boolean {
  const cause = err instanceof StoreError ? err.cause : err;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && RETRYABLE.has(code);
}
