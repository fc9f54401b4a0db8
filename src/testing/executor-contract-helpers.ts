import { strict as nodeAssert } from "node:assert";
import type { Database } from "../sql/index.js";

/** Arrays and objects copied into plain ones, so deep equality compares contents, not prototypes. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  }
  return value;
}

/** The assertions the contract cases use. */
export interface ContractAssert {
  /** Deep strict equality of contents; null-prototype objects compare like plain ones. */
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
  /** Strict (`Object.is`) equality. */
  equal(actual: unknown, expected: unknown, message?: string): void;
  /** Strict (`Object.is`) inequality. */
  notEqual(actual: unknown, expected: unknown, message?: string): void;
  /** Throws unless `value` is truthy. */
  ok(value: unknown, message?: string): asserts value;
  /** Throws with `message`. */
  fail(message?: string): never;
}

/**
 * node:assert in strict mode, except that `deepEqual` ignores a null prototype: node:sqlite
 * returns rows as null-prototype objects, better-sqlite3 and pg as plain ones, and the contract
 * is about the rows' contents.
 */
export const assert: ContractAssert = {
  deepEqual(actual: unknown, expected: unknown, message?: string): void {
    nodeAssert.deepEqual(plain(actual), plain(expected), message);
  },
  equal: nodeAssert.equal,
  notEqual: nodeAssert.notEqual,
  ok: nodeAssert.ok,
  fail: nodeAssert.fail,
};

/** One executor contract case: gets a factory of fresh, empty databases and closes what it opens. */
export interface ExecutorCase {
  readonly name: string;
  run(open: () => Promise<Database>): Promise<void>;
}

/** Opens a fresh database with an `items(id, n, body)` table, runs `fn`, closes the database. */
export async function withItems(open: () => Promise<Database>, fn: (db: Database) => Promise<void>): Promise<void> {
  const db = await open();
  try {
    await db.run(`CREATE TABLE items (id TEXT PRIMARY KEY, n ${db.dialect.bigintType}, body ${db.dialect.blobType})`);
    await fn(db);
  } finally {
    await db.close();
  }
}

/** Opens a fresh database, runs `fn`, closes it. */
export async function withDatabase(open: () => Promise<Database>, fn: (db: Database) => Promise<void>): Promise<void> {
  const db = await open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

/** Awaits `promise`, asserts that it rejected, and returns the reason. */
export async function rejection(promise: Promise<unknown>, message: string): Promise<unknown> {
  let caught: unknown;
  let rejected = false;
  await promise.then(
    () => undefined,
    (err: unknown) => {
      rejected = true;
      caught = err;
    },
  );
  assert.ok(rejected, message);
  return caught;
}

/** Asserts that `promise` rejects with an instance of `type`, and returns the error. */
export async function rejectsWith<E>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const err = await rejection(promise, `expected a ${type.name}`);
  assert.ok(err instanceof type, `expected a ${type.name}, got ${String(err)}`);
  return err as E;
}
