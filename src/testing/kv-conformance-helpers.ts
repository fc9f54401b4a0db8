import { strict as assert } from "node:assert";
import type { Store, Tx } from "../kv/index.js";

/** One conformance case: runs against a fresh store, which the suite closes afterwards. */
export interface StoreCase {
  readonly name: string;
  run(store: Store, options: { lostUpdate?: { workers: number; increments: number } }): Promise<void>;
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(value: Uint8Array): string {
  return decoder.decode(value);
}

/** Compares contents only, so a Buffer and a Uint8Array with the same bytes are equal. */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  assert.ok(actual instanceof Uint8Array, message ?? "value is a Uint8Array");
  assert.deepEqual([...actual], [...expected], message);
}

/** Asserts that `promise` rejects with a storeroom error of `code`, and returns it. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected a ${code} error`),
    (err: unknown) => {
      caught = err;
    },
  );
  assert.equal((caught as { code?: unknown }).code, code, `expected ${code}, got ${String(caught)}`);
  return caught as Error;
}

export function putAll(store: Store, ns: string, entries: Record<string, string>): Promise<void> {
  return store.update(async (tx) => {
    for (const [key, value] of Object.entries(entries)) await tx.put(ns, key, bytes(value));
  });
}

export async function scanKeys(tx: Tx, ns: string, arg?: Parameters<Tx["scan"]>[1]): Promise<string[]> {
  return (await tx.scan(ns, arg)).map((e) => e.key);
}

/** Sorts like every driver must: by UTF-8 bytes. */
export function utf8Sorted(keys: readonly string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}
