import { compareKeys, type ResolvedRange } from "./key-order.js";

/** One namespace of the memory driver: a map plus its keys kept sorted in UTF-8 byte order. */
export class SortedNamespace {
  readonly #values = new Map<string, Uint8Array>();
  readonly #keys: string[] = [];

  get size(): number {
    return this.#values.size;
  }

  get(key: string): Uint8Array | undefined {
    return this.#values.get(key);
  }

  /** Stores `value` as is; the caller hands over a private copy. */
  set(key: string, value: Uint8Array): void {
    if (!this.#values.has(key)) this.#keys.splice(this.#lowerBound(key), 0, key);
    this.#values.set(key, value);
  }

  delete(key: string): void {
    if (!this.#values.delete(key)) return;
    this.#keys.splice(this.#lowerBound(key), 1);
  }

  /** Keys within the range, in the range's order, honouring its limit. */
  keys(range: ResolvedRange): string[] {
    const keys = this.#keys;
    const lo = range.lower === undefined ? 0 : this.#lowerBound(range.lower);
    let hi = range.upper === undefined ? keys.length : this.#lowerBound(range.upper);
    // Keys with the prefix form one run that starts at `lo`, because `lower >= prefix`.
    if (range.prefix !== "") hi = firstIndex(lo, hi, (i) => !(keys[i] as string).startsWith(range.prefix));
    const count = Math.max(0, Math.min(hi - lo, range.limit ?? Number.POSITIVE_INFINITY));
    if (!range.reverse) return keys.slice(lo, lo + count);
    return keys.slice(hi - count, hi).reverse();
  }

  #lowerBound(key: string): number {
    const keys = this.#keys;
    return firstIndex(0, keys.length, (i) => compareKeys(keys[i] as string, key) >= 0);
  }
}

/** The first index in `[lo, hi)` where the monotone predicate holds, or `hi`. */
function firstIndex(lo: number, hi: number, holds: (i: number) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (holds(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
