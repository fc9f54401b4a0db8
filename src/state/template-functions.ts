import { goSprint, goSprintf, goSprintln } from "./go-format.js";
import { isGoPrintable } from "./template-strings.js";
import {
  GoStringMap,
  isTrue,
  kindOf,
  mapEntries,
  mapGet,
  mapZero,
  NO_VALUE,
  numberOf,
  sliceItems,
  typeName,
} from "./template-values.js";

/** A builtin failed; the executor reports it as Go's `error calling NAME: MESSAGE`. */
export class CallError extends Error {}

type Builtin = (args: unknown[]) => unknown;

/** The builtins that take evaluated arguments (`and` and `or` evaluate lazily in the executor). */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ["not", (a) => !isTrue(a[0])],
  ["len", (a) => length(a[0])],
  ["index", (a) => index(a[0], a.slice(1))],
  ["slice", (a) => slice(a[0], a.slice(1))],
  ["print", (a) => goSprint(printable(a))],
  ["println", (a) => goSprintln(printable(a))],
  ["printf", (a) => printf(a)],
  ["html", (a) => htmlEscape(evalArgs(a))],
  ["js", (a) => jsEscape(evalArgs(a))],
  ["urlquery", (a) => queryEscape(evalArgs(a))],
  ["eq", (a) => eq(a)],
  ["ne", (a) => !eq(a)],
  ["lt", (a) => lt(a[0], a[1])],
  ["le", (a) => le(a[0], a[1])],
  ["gt", (a) => !le(a[0], a[1])],
  ["ge", (a) => !lt(a[0], a[1])],
  [
    "call",
    (a) => {
      throw new CallError(a.length === 0 ? "call of nil" : `non-function of type ${typeName(a[0])}`);
    },
  ],
]);

/** How many arguments each fixed-arity builtin wants, for Go's "wrong number of args" error. */
export const ARITY: ReadonlyMap<string, [number, boolean]> = new Map<string, [number, boolean]>([
  ["not", [1, false]],
  ["len", [1, false]],
  ["index", [1, true]],
  ["slice", [1, true]],
  ["printf", [1, true]],
  ["eq", [1, true]],
  ["ne", [2, false]],
  ["lt", [2, false]],
  ["le", [2, false]],
  ["gt", [2, false]],
  ["ge", [2, false]],
  ["and", [1, true]],
  ["or", [1, true]],
  ["call", [1, true]],
]);

function printable(a: unknown[]): unknown[] {
  return a.map((v) => (v === NO_VALUE ? undefined : v));
}

function printf(a: unknown[]): string {
  const [format, ...rest] = a;
  if (typeof format !== "string") throw new CallError(`wrong type for value; expected string; got ${typeName(format)}`);
  return goSprintf(format, printable(rest));
}

function length(v: unknown): number {
  switch (kindOf(v)) {
    case "string":
      return Buffer.byteLength(v as string, "utf8");
    case "slice":
      return sliceItems(v).length;
    case "map":
      return mapEntries(v).size;
    case "invalid":
    case "nil":
      throw new CallError("len of nil pointer");
    default:
      throw new CallError(`len of type ${typeName(v)}`);
  }
}

function indexOf(v: unknown, cap: number): number {
  if (kindOf(v) !== "int") {
    if (kindOf(v) === "invalid" || kindOf(v) === "nil") throw new CallError("cannot index slice/array with nil");
    throw new CallError(`cannot index slice/array with type ${typeName(v)}`);
  }
  const i = numberOf(v);
  if (i < 0 || i >= cap) throw new CallError(`index out of range: ${i}`);
  return i;
}

function index(item: unknown, indexes: unknown[]): unknown {
  let v = item;
  if (kindOf(v) === "invalid" || kindOf(v) === "nil") throw new CallError("index of untyped nil");
  for (const ix of indexes) {
    switch (kindOf(v)) {
      case "string": {
        const bytes = Buffer.from(v as string, "utf8");
        v = bytes[indexOf(ix, bytes.length)];
        break;
      }
      case "slice": {
        const items = sliceItems(v);
        v = items[indexOf(ix, items.length)];
        break;
      }
      case "map": {
        if (typeof ix !== "string") {
          if (kindOf(ix) === "invalid" || kindOf(ix) === "nil") {
            v = mapZero(v);
            break;
          }
          throw new CallError(`value has type ${typeName(ix)}; should be string`);
        }
        const found = mapGet(v, ix);
        v = found === NO_VALUE ? mapZero(v) : found;
        break;
      }
      case "invalid":
      case "nil":
        throw new CallError("index of nil pointer");
      default:
        throw new CallError(`can't index item of type ${typeName(v)}`);
    }
  }
  return v;
}

function slice(item: unknown, indexes: unknown[]): unknown {
  const kind = kindOf(item);
  if (kind === "invalid" || kind === "nil") throw new CallError("slice of untyped nil");
  if (indexes.length > 3) throw new CallError(`too many slice indexes: ${indexes.length}`);
  if (kind !== "string" && kind !== "slice") throw new CallError(`can't slice item of type ${typeName(item)}`);
  if (kind === "string" && indexes.length === 3) throw new CallError("cannot 3-index slice a string");
  const whole = kind === "string" ? Buffer.from(item as string, "utf8") : sliceItems(item);
  const cap = whole.length;
  const idx = [0, cap];
  indexes.forEach((ix, i) => {
    if (kindOf(ix) !== "int") throw new CallError(`cannot index slice/array with type ${typeName(ix)}`);
    const n = numberOf(ix);
    if (n < 0 || n > cap) throw new CallError(`index out of range: ${n}`);
    idx[i] = n;
  });
  const [lo = 0, hi = cap] = idx;
  if (lo > hi) throw new CallError(`invalid slice index: ${lo} > ${hi}`);
  if (kind === "string") return (whole as Buffer).subarray(lo, hi).toString("utf8");
  return (whole as unknown[]).slice(lo, hi);
}

type BasicKind = "bool" | "int" | "float" | "string";

function basicKind(v: unknown): BasicKind | undefined {
  const k = kindOf(v);
  return k === "bool" || k === "int" || k === "float" || k === "string" ? k : undefined;
}

function isZero(v: unknown): boolean {
  return v === NO_VALUE || v === null || v === undefined;
}

function eq(args: unknown[]): boolean {
  const [a, ...rest] = args;
  if (rest.length === 0) throw new CallError("missing argument for comparison");
  const k1 = basicKind(a);
  for (const b of rest) {
    const k2 = basicKind(b);
    let truth = false;
    if (k1 !== k2) {
      if (!isZero(a) && !isZero(b)) throw new CallError("incompatible types for comparison");
    } else if (k1 === undefined) {
      const ka = kindOf(a);
      const kb = kindOf(b);
      if ((ka === "slice" || ka === "map") && !isZero(b))
        throw new CallError(`non-comparable type ${goSprint([a])}: ${typeName(a)}`);
      if ((kb === "slice" || kb === "map") && !isZero(a))
        throw new CallError(`non-comparable type ${goSprint([b])}: ${typeName(b)}`);
      truth = isZero(a) === isZero(b);
    } else {
      truth = k1 === "int" || k1 === "float" ? numberOf(a) === numberOf(b) : a === b;
    }
    if (truth) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === undefined || k2 === undefined) throw new CallError("invalid type for comparison");
  if (k1 !== k2) throw new CallError("incompatible types for comparison");
  if (k1 === "bool") throw new CallError("invalid type for comparison");
  if (k1 === "string") return Buffer.compare(Buffer.from(a as string), Buffer.from(b as string)) < 0;
  return numberOf(a) < numberOf(b);
}

function le(a: unknown, b: unknown): boolean {
  return lt(a, b) || eq([a, b]);
}

/** Go's `evalArgs`: a lone string argument as is, otherwise `fmt.Sprint` of the arguments. */
function evalArgs(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  return goSprint(printable(args));
}

/** Go's `template.HTMLEscapeString`. */
export function htmlEscape(s: string): string {
  return s.replace(/[<>&'"]|\0/g, (c) => {
    switch (c) {
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case "&":
        return "&amp;";
      case "'":
        return "&#39;";
      case '"':
        return "&#34;";
      default:
        return "\uFFFD";
    }
  });
}

/** Go's `template.JSEscapeString`. */
export function jsEscape(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case "\\":
        out += "\\\\";
        continue;
      case "'":
        out += "\\'";
        continue;
      case '"':
        out += '\\"';
        continue;
      case "<":
        out += "\\u003C";
        continue;
      case ">":
        out += "\\u003E";
        continue;
      case "&":
        out += "\\u0026";
        continue;
      case "=":
        out += "\\u003D";
        continue;
    }
    if (cp < 0x80) {
      out += cp < 0x20 || cp === 0x7f ? `\\u${cp.toString(16).toUpperCase().padStart(4, "0")}` : ch;
    } else {
      out += isGoPrintable(cp) ? ch : `\\u${cp.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  return out;
}

/** Go's `url.QueryEscape`: spaces as `+`, everything but `A-Za-z0-9-_.~` percent-encoded (upper-case hex). */
export function queryEscape(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Whether `v` is the `map[string]string` of `render` (for messages). */
export function isStringMap(v: unknown): boolean {
  return v instanceof GoStringMap;
}
