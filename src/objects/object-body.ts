import { Readable } from "node:stream";
import { InvalidArgumentError } from "../errors.js";
import type { ObjectBodyInput } from "./object-store.js";

/** Yields the chunks of any accepted body as bytes (strings as UTF-8), reading streams once. */
export async function* bodyChunks(body: ObjectBodyInput, op: string): AsyncGenerator<Uint8Array> {
  if (typeof body === "string") {
    yield Buffer.from(body, "utf8");
    return;
  }
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  if (body === null || typeof body !== "object" || !(Symbol.asyncIterator in body)) {
    throw new InvalidArgumentError("body must be bytes, a string, a stream or an async iterable", { op });
  }
  for await (const chunk of body as AsyncIterable<unknown>) {
    if (typeof chunk === "string") yield Buffer.from(chunk, "utf8");
    else if (chunk instanceof Uint8Array) yield chunk;
    else throw new InvalidArgumentError("body chunks must be bytes or strings", { op });
  }
}

/** Collects a whole body into one buffer of its own (never a view of the caller's bytes, which the caller may reuse). */
export async function readBody(body: ObjectBodyInput, op: string): Promise<Buffer> {
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Uint8Array[] = [];
  for await (const chunk of bodyChunks(body, op)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A one-shot readable over bytes already in memory. */
export function bufferStream(bytes: Uint8Array): Readable {
  return Readable.from(bytes.byteLength === 0 ? [] : [Buffer.from(bytes)], { objectMode: false });
}

/**
 * Reads chunks until at least `limit` bytes are collected or the source ends (`done`). A chunk
 * may overshoot the limit; it is kept whole.
 */
export async function readUpTo(
  chunks: AsyncIterator<Uint8Array>,
  limit: number,
): Promise<{ bytes: Buffer; done: boolean }> {
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const next = await chunks.next();
    if (next.done) return { bytes: Buffer.concat(parts), done: true };
    parts.push(next.value);
    size += next.value.byteLength;
  }
  return { bytes: Buffer.concat(parts), done: false };
}
