import type { JsonMember } from "./go-json.js";
import { WireError, type WireErrorReason } from "./wire-error.js";
import { replaceRawBytes } from "./wire-text.js";

/**
 * The key Go's `encoding/json` matches a member name to a struct field by: names are equal
 * ignoring case under Unicode simple folding, which for ASCII field names means ASCII letters
 * fold together and U+017F (ſ) and U+212A (Kelvin sign) fold to `S` and `K`.
 */
export function goFieldKey(name: string): string {
  return name.replace(/[a-z\u017f\u212a]/g, (c) => (c === "\u017f" ? "S" : c === "\u212a" ? "K" : c.toUpperCase()));
}

/**
 * A struct's JSON field names, looked up the way `json.Unmarshal` does: an exact match, or
 * else a case-insensitive one (see {@link goFieldKey}). Unknown members are ignored.
 */
export class GoStruct<F extends string> {
  readonly #exact = new Map<string, F>();
  readonly #byKey = new Map<string, F>();
  readonly #lengths = new Set<number>();

  constructor(fields: readonly F[]) {
    for (const f of fields) {
      this.#exact.set(f, f);
      this.#byKey.set(goFieldKey(f), f);
      this.#lengths.add(f.length);
    }
  }

  /** The field a member name decodes into, or `undefined` when the struct has none. */
  field(name: string): F | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    // Folding keeps the length (ſ and K are one code unit, like s and k): most names need no fold.
    return this.#lengths.has(name.length) ? this.#byKey.get(goFieldKey(name)) : undefined;
  }

  /**
   * Calls `assign` for every member that names a field, in document order, so a later
   * duplicate overwrites an earlier one (Go keeps the last).
   */
  each(members: readonly JsonMember[], assign: (field: F, raw: string) => void): void {
    for (const m of members) {
      const f = this.field(m.name);
      if (f !== undefined) assign(f, m.raw);
    }
  }
}

/**
 * Decodes a member's raw value into a Go `string` field: a JSON string as Go decodes it
 * (a lone surrogate escape or a byte that is not UTF-8 becomes U+FFFD), or `undefined` for
 * `null` (Go leaves the field unchanged). Any other type throws {@link WireError} with `reason`.
 */
export function decodeGoString(raw: string, what: string, reason: WireErrorReason = "malformed"): string | undefined {
  if (raw.charCodeAt(0) !== 34) {
    if (raw === "null") return undefined;
    throw new WireError(reason, `${what} must be a string`);
  }
  if (raw.indexOf("\\") < 0 && raw.isWellFormed()) return raw.slice(1, -1);
  const value = JSON.parse(replaceRawBytes(raw)) as string;
  return value.isWellFormed() ? value : value.toWellFormed();
}
