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

/** Throws {@link InvalidArgumentError} unless `contentLength` is absent or a non-negative safe integer. */
export function assertContentLength(contentLength: unknown, op: string): void {
  if (contentLength !== undefined && (!Number.isSafeInteger(contentLength) || (contentLength as number) < 0)) {
    throw new InvalidArgumentError(`contentLength must be a non-negative integer, got ${String(contentLength)}`, {
      op,
    });
  }
}

/**
 * `body` held to its declared `contentLength` (absent: unchanged). Bytes and text are measured
 * at once; a stream is counted as it flows and fails with {@link InvalidArgumentError} at the
 * first byte too many, or at its end when it falls short (instead of ending), so a store,
 * which keeps a body only once it ended cleanly, never keeps one of another length.
 */
export function withDeclaredLength(
  body: ObjectBodyInput,
  contentLength: number | undefined,
  op: string,
): ObjectBodyInput {
  if (contentLength === undefined) return body;
  if (typeof body === "string" || body instanceof Uint8Array) {
    const size = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
    if (size !== contentLength) throw lengthMismatch(size, contentLength, op);
    return body;
  }
  return declaredLengthChunks(body, contentLength, op);
}

async function* declaredLengthChunks(body: ObjectBodyInput, contentLength: number, op: string) {
  let size = 0;
  for await (const chunk of bodyChunks(body, op)) {
    size += chunk.byteLength;
    if (size > contentLength) throw lengthMismatch(`more than ${contentLength}`, contentLength, op);
    yield chunk;
  }
  if (size < contentLength) throw lengthMismatch(size, contentLength, op);
}

function lengthMismatch(size: number | string, contentLength: number, op: string): InvalidArgumentError {
  return new InvalidArgumentError(`body is ${size} bytes, contentLength says ${contentLength}`, { op });
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
