import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { isStoreError, type StoreErrorCode } from "../errors.js";
import type { ObjectStore } from "../objects/index.js";

/** Registers one contract case; the case gets a fresh store and a random key prefix. */
export type Register = (name: string, fn: (store: ObjectStore, prefix: string) => Promise<void>) => void;

export async function rejectsWith(promise: Promise<unknown>, code: StoreErrorCode, message?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isStoreError(err, code), `${message ?? ""} expected ${code}, got ${String(err)}`);
    return true;
  });
}

export async function readAll(body: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

export async function bytesOf(store: ObjectStore, key: string): Promise<Buffer> {
  const got = await store.get(key);
  assert.ok(got, `object ${key} is missing`);
  return readAll(got.body);
}

export async function text(store: ObjectStore, key: string): Promise<string> {
  return (await bytesOf(store, key)).toString("utf8");
}

export function filled(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

export function* chunksSync(count: number, size: number): Generator<Buffer> {
  for (let i = 0; i < count; i++) yield filled(size, i);
}

export async function* chunks(count: number, size: number): AsyncGenerator<Buffer> {
  for (const chunk of chunksSync(count, size)) {
    await Promise.resolve();
    yield chunk;
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
