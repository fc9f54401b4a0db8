import { TooLargeError } from "../errors.js";
import type { ObjectBodyInput } from "../objects/index.js";

/**
 * Passes `body` through unchanged when its size is known up front (bytes, text) and rejects
 * it early when larger than `max`; streams are counted as they flow and fail with
 * {@link TooLargeError} on the first byte past `max`, so an oversized part never completes.
 */
export function limitBody(body: ObjectBodyInput, max: number, op: string): ObjectBodyInput {
  if (typeof body === "string" || body instanceof Uint8Array) {
    const size = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    if (size > max) throw new TooLargeError(`part is ${size} bytes, more than the part size ${max}`, { op });
    return body;
  }
  return counted(body, max, op);
}

async function* counted(body: AsyncIterable<Uint8Array | string>, max: number, op: string): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    total += bytes.byteLength;
    if (total > max) throw new TooLargeError(`part is more than the part size ${max} bytes`, { op });
    yield bytes;
  }
}
