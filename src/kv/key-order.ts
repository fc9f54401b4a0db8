import { InvalidArgumentError, InvalidKeyError } from "../errors.js";
import type { ScanRange } from "./store.js";

/**
 * Rejects what cannot round-trip through UTF-8: non-strings and strings with a lone
 * surrogate (they would collapse onto U+FFFD and collide with other keys).
 */
export function assertKey(what: "namespace" | "key", value: unknown, op: string): asserts value is string {
  if (typeof value !== "string") throw new InvalidKeyError(`${what} must be a string`, { op });
  if (!(value as unknown as WellFormedCheck).isWellFormed())
    throw new InvalidKeyError(`${what} contains a lone surrogate`, { op });
}

/** `String.prototype.isWellFormed` (Node 20+; newer than the ES2023 lib this project types against). */
interface WellFormedCheck {
  isWellFormed(): boolean;
}

export function assertValue(value: unknown, op: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError("value must be a Uint8Array", { op });
}

/**
 * Compares two well-formed strings in UTF-8 byte order, which equals code point order. JS
 * `<` compares UTF-16 code units, which puts U+10000.. (surrogate pairs) before U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixup(x) - fixup(y);
  }
  return a.length - b.length;
}

function fixup(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** A scan argument resolved to bounds: keys in `[lower, upper)` starting with `prefix`. */
export interface ResolvedRange {
  readonly prefix: string;
  readonly lower: string | undefined;
  readonly upper: string | undefined;
  readonly limit: number | undefined;
  readonly reverse: boolean;
}

/** Validates a scan argument and folds `prefix` and `start`/`end` into one lower and upper bound. */
export function resolveRange(arg: string | ScanRange | undefined, op: string): ResolvedRange {
  if (arg === undefined || typeof arg === "string") {
    const prefix = arg ?? "";
    assertKey("key", prefix, op);
    return { prefix, lower: prefix === "" ? undefined : prefix, upper: undefined, limit: undefined, reverse: false };
  }
  if (typeof arg !== "object" || arg === null) throw new InvalidArgumentError("scan takes a prefix or a range", { op });
  const prefix = arg.prefix ?? "";
  assertKey("key", prefix, op);
  if (arg.start !== undefined) assertKey("key", arg.start, op);
  if (arg.end !== undefined) assertKey("key", arg.end, op);
  if (arg.limit !== undefined && !(Number.isSafeInteger(arg.limit) && arg.limit >= 0)) {
    throw new InvalidArgumentError("scan limit must be a non-negative integer", { op });
  }
  let lower = arg.start;
  if (prefix !== "" && (lower === undefined || compareKeys(lower, prefix) < 0)) lower = prefix;
  return { prefix, lower, upper: arg.end, limit: arg.limit, reverse: arg.reverse === true };
}

/**
 * The smallest byte string greater than every string starting with `prefix`, or `undefined`
 * when there is none. UTF-8 never contains 0xFF, so incrementing the last byte is enough.
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | undefined {
  if (prefix.length === 0) return undefined;
  const out = Uint8Array.from(prefix);
  out[out.length - 1] = (out[out.length - 1] as number) + 1;
  return out;
}

/**
 * A private copy of `bytes`. `Buffer.from` copies into Node's pooled slab for small values,
 * which costs a fraction of allocating a fresh off-heap `Uint8Array` (V8 keeps only typed
 * arrays up to 64 bytes on the heap); the copy shares no bytes with anything else.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return Buffer.from(bytes);
}
