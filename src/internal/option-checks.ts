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
 * neither is given or both are.
 */
export function databaseOption<T>(options: { database?: T; db?: T }, op: string): T {
  const { database, db } = options;
  if (database !== undefined && db !== undefined) {
    throw new InvalidArgumentError("database and its deprecated alias db were both given", { op });
  }
  const chosen = database ?? db;
  if (chosen === undefined || chosen === null) throw new InvalidArgumentError("database is required", { op });
  return chosen;
}
