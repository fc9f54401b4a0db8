import { UnsupportedError } from "../errors.js";

/** Go's invalid `reflect.Value`: what a missing map key yields; prints as `<no value>`. */
export const NO_VALUE: unique symbol = Symbol("no value");

/** A float64 whose value is integral (`3.0`, `1e3`): JavaScript numbers alone would read as int. */
export class GoFloat {
  constructor(readonly value: number) {}
}

/** A Go `map[string]string`, the data `render` passes (a missing key indexes to `""`). */
export class GoStringMap {
  constructor(readonly entries: ReadonlyMap<string, string>) {}
}

/** The Go kinds template data can have. JavaScript values map to them as documented in docs/state.md. */
export type GoKind = "invalid" | "nil" | "string" | "int" | "float" | "bool" | "slice" | "map";

export function kindOf(v: unknown): GoKind {
  if (v === NO_VALUE) return "invalid";
  if (v === null || v === undefined) return "nil";
  switch (typeof v) {
    case "string":
      return "string";
    case "number":
      return Number.isInteger(v) ? "int" : "float";
    case "bigint":
      return "int";
    case "boolean":
      return "bool";
  }
  if (v instanceof GoFloat) return "float";
  if (Array.isArray(v) || v instanceof Uint8Array) return "slice";
  if (v instanceof Map || v instanceof GoStringMap || isPlainObject(v)) return "map";
  throw new UnsupportedError(`template data of type ${Object.prototype.toString.call(v)} is not supported`, {
    op: "state.render",
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The Go type name used in messages and `%T`. */
export function typeName(v: unknown): string {
  switch (kindOf(v)) {
    case "invalid":
      return "<invalid reflect.Value>";
    case "nil":
      return "<nil>";
    case "string":
      return "string";
    case "int":
      return "int";
    case "float":
      return "float64";
    case "bool":
      return "bool";
    case "slice":
      return v instanceof Uint8Array ? "[]uint8" : "[]interface {}";
    case "map":
      return v instanceof GoStringMap ? "map[string]string" : "map[string]interface {}";
  }
}

/** The number of an int or float value. */
export function numberOf(v: unknown): number {
  if (v instanceof GoFloat) return v.value;
  return Number(v);
}

/** Entries of a map value (plain objects and `Map`s with string keys). */
export function mapEntries(v: unknown): ReadonlyMap<string, unknown> {
  if (v instanceof GoStringMap) return v.entries;
  if (v instanceof Map) return v as ReadonlyMap<string, unknown>;
  return new Map(Object.entries(v as Record<string, unknown>));
}

/** Looks up `key` in a map value: the value, or {@link NO_VALUE} when absent. */
export function mapGet(v: unknown, key: string): unknown {
  if (v instanceof GoStringMap) return v.entries.has(key) ? v.entries.get(key) : NO_VALUE;
  if (v instanceof Map) return v.has(key) ? v.get(key) : NO_VALUE;
  return Object.hasOwn(v as object, key) ? (v as Record<string, unknown>)[key] : NO_VALUE;
}

/** The zero value of a map's element type: `""` for `map[string]string`, nil otherwise. */
export function mapZero(v: unknown): unknown {
  return v instanceof GoStringMap ? "" : null;
}

/** Elements of a slice value. */
export function sliceItems(v: unknown): readonly unknown[] {
  return v instanceof Uint8Array ? [...v] : (v as unknown[]);
}

/** Map keys in Go's sorted order (byte order of UTF-8, i.e. code point order). */
export function sortedKeys(v: unknown): string[] {
  return [...mapEntries(v).keys()].sort(compareStrings);
}

/** Go's string comparison: byte order of the UTF-8 encodings. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Go's truth: false for invalid, nil, zero numbers, false, and empty strings, slices and maps. */
export function isTrue(v: unknown): boolean {
  switch (kindOf(v)) {
    case "invalid":
    case "nil":
      return false;
    case "string":
      return (v as string).length > 0;
    case "int":
    case "float":
      return numberOf(v) !== 0;
    case "bool":
      return v as boolean;
    case "slice":
      return sliceItems(v).length > 0;
    case "map":
      return mapEntries(v).size > 0;
  }
}
