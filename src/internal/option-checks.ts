import type { Clock } from "../clock.js";
import { InvalidArgumentError } from "../errors.js";

/**
 * `value` when it is a positive safe integer, `fallback` when it is `undefined`; anything else
 * throws {@link InvalidArgumentError} naming `option`. A bad value is never replaced silently.
 */
export function positiveInteger(value: unknown, option: string, op: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`${option} must be a positive integer, got ${String(value)}`, { op });
  }
  return value;
}

/**
 * `value` when it is a safe integer >= 0, `fallback` when it is `undefined`; anything else
 * throws {@link InvalidArgumentError} naming `option`.
 */
export function nonNegativeInteger(value: unknown, option: string, op: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${option} must be a non-negative integer, got ${String(value)}`, { op });
  }
  return value;
}

/** `value` when it is a boolean, `fallback` when it is `undefined`; anything else throws naming `option`. */
export function booleanOption(value: unknown, option: string, op: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new InvalidArgumentError(`${option} must be a boolean`, { op });
  return value;
}

/** `value` when it is a non-empty string; anything else (`undefined` too) throws naming `option`. */
export function nonEmptyString(value: unknown, option: string, op: string): string {
  if (typeof value !== "string" || value === "") {
    throw new InvalidArgumentError(`${option} must be a non-empty string`, { op });
  }
  return value;
}

/** `value` when it is a function, `undefined` when it is `undefined` and optional; anything else throws naming `option`. */
export function functionOption<F extends (...args: never[]) => unknown>(
  value: F | undefined,
  option: string,
  op: string,
  required = false,
): F | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== "function") throw new InvalidArgumentError(`${option} must be a function`, { op });
  return value;
}

/** `value` when it is a {@link Clock} (an object with `now()`), `fallback` when it is `undefined`; anything else throws naming `clock`. */
export function clockOption<C extends Clock>(value: C | undefined, op: string, fallback: C): C {
  if (value === undefined) return fallback;
  if (value === null || typeof value !== "object" || typeof (value as Partial<Clock>).now !== "function") {
    throw new InvalidArgumentError(`clock must be a Clock (an object with now()), got ${String(value)}`, { op });
  }
  return value;
}

/**
 * The `database` option, or the deprecated `db` it replaced; throws naming `database` when
 * neither is given, both are, or the value is not an executor (no `run()`, `get()`, `all()`).
 */
export function databaseOption<T>(options: { database?: T; db?: T }, op: string): T {
  const { database, db } = options;
  if (database !== undefined && db !== undefined) {
    throw new InvalidArgumentError("database and its deprecated alias db were both given", { op });
  }
  const chosen = database ?? db;
  if (chosen === undefined || chosen === null) throw new InvalidArgumentError("database is required", { op });
  const executor = chosen as Record<string, unknown>;
  if (typeof executor !== "object" || ["run", "get", "all"].some((method) => typeof executor[method] !== "function")) {
    throw new InvalidArgumentError(
      `database must be a storeroom Database or transaction (openSqlite / openPostgres), got ${describeValue(chosen)}`,
      { op },
    );
  }
  return chosen;
}

/**
 * `value` when it is an object with a function for each name in `methods`; anything else
 * (`undefined` too) throws naming `option` and what it must be, e.g.
 * `"objects must be an ObjectStore (an object with get(), put()), got 5"`.
 */
export function objectOption<T>(
  value: T | undefined,
  option: string,
  op: string,
  what: string,
  methods: readonly string[],
): T {
  const record = value as Record<string, unknown> | null | undefined;
  if (
    record === null ||
    (typeof record !== "object" && typeof record !== "function") ||
    methods.some((method) => typeof record[method] !== "function")
  ) {
    const shape = methods.length === 0 ? "an object" : `an object with ${methods.map((m) => `${m}()`).join(", ")}`;
    throw new InvalidArgumentError(`${option} must be ${what} (${shape}), got ${describeValue(value)}`, { op });
  }
  return value as T;
}

/** A short description of a bad option value for messages: `5`, `"x"`, `undefined`, `an object`. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "function") return "a function";
  if (value !== null && typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

/** `value` when it is an object store (`get()`, `head()`, `put()`, `delete()`, `list()`); anything else throws naming `option`. */
export function objectStoreOption<T>(value: T | undefined, option: string, op: string): T {
  return objectOption(value, option, op, "an ObjectStore", ["get", "head", "put", "delete", "list"]);
}

/**
 * `value` when it is a storeroom `Database` (`run()`, `get()`, `all()`, `transaction()`,
 * `migrate()`); anything else (`undefined` too) throws naming `option`.
 */
export function databaseInstance<T>(value: T | undefined, option: string, op: string): T {
  return objectOption(value, option, op, "a storeroom Database", ["run", "get", "all", "transaction", "migrate"]);
}
