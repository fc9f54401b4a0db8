import { InvalidArgumentError, TooLargeError } from "../errors.js";
import type { ObjectBodyInput } from "../objects/index.js";

/**
 * Checks that `body` is exactly `expected` bytes before the backend keeps it. Bytes and text
 * are measured up front. Streams are counted as they flow: the first byte past `expected`
 * fails with {@link TooLargeError}, and a stream that ends short fails with
 * {@link InvalidArgumentError} instead of ending, so the backend sees a failed body and
 * keeps whatever part it stored before (every backend publishes a part only after its body
 * ended cleanly).
 */
export function exactBody(body: ObjectBodyInput, expected: number, op: string): ObjectBodyInput {
  if (typeof body === "string" || body instanceof Uint8Array) {
    checkPartLength(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength, expected, op);
    return body;
  }
  return counted(body, expected, op);
}

/** Throws unless `size` is `expected`: larger -> {@link TooLargeError}, smaller -> {@link InvalidArgumentError}. */
export function checkPartLength(size: number, expected: number, op: string): void {
  if (size > expected) {
    throw new TooLargeError(`part is ${size} bytes; this part must be exactly ${expected}`, { op });
  }
  if (size < expected) {
    throw new InvalidArgumentError(`part is ${size} bytes; this part must be exactly ${expected}`, { op });
  }
}

async function* counted(
  body: AsyncIterable<Uint8Array | string>,
  expected: number,
  op: string,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    total += bytes.byteLength;
    if (total > expected) throw new TooLargeError(`part is more than the ${expected} bytes this part must be`, { op });
    yield bytes;
  }
  if (total < expected) {
    throw new InvalidArgumentError(`part is ${total} bytes; this part must be exactly ${expected}`, { op });
  }
}
