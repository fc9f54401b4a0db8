import { UnsupportedError } from "../errors.js";
import { isGoPrintable, quoteGo } from "./template-strings.js";
import { kindOf, mapEntries, NO_VALUE, numberOf, sliceItems, sortedKeys, typeName } from "./template-values.js";

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | undefined;
  prec: number | undefined;
}

const PLAIN: Spec = {
  minus: false,
  plus: false,
  sharp: false,
  space: false,
  zero: false,
  width: undefined,
  prec: undefined,
};

/** Go's `fmt.Sprint`: operands formatted with `%v`, a space between two operands when neither is a string. */
export function goSprint(args: readonly unknown[]): string {
  let out = "";
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string") out += " ";
    out += formatValue(a, "v", PLAIN);
  });
  return out;
}

/** Go's `fmt.Sprintln`: operands with `%v`, always space-separated, with a trailing newline. */
export function goSprintln(args: readonly unknown[]): string {
  return `${args.map((a) => formatValue(a, "v", PLAIN)).join(" ")}\n`;
}

/**
 * Go's `fmt.Sprintf` for the verbs of strings, integers, floats, booleans, slices and maps:
 * `%v %s %q %d %b %o %O %x %X %c %U %e %E %f %F %g %G %t %T %%` with the flags `+ - # 0 space`,
 * width and precision (also `*`). Wrong verbs and argument counts print Go's `%!d(string=x)`,
 * `%!d(MISSING)` and `%!(EXTRA ...)` markers. `%#v` throws {@link UnsupportedError}.
 */
export function goSprintf(format: string, args: readonly unknown[]): string {
  let out = "";
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf("%", i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec: Spec = { ...PLAIN };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === "-") spec.minus = true;
      else if (c === "+") spec.plus = true;
      else if (c === "#") spec.sharp = true;
      else if (c === " ") spec.space = true;
      else if (c === "0") spec.zero = !spec.minus;
      else break;
    }
    let bad = "";
    if (format[i] === "*") {
      i++;
      const w = args[argi++];
      if (kindOf(w) === "int" && !tooLarge(numberOf(w))) {
        spec.width = numberOf(w);
        if (spec.width < 0) {
          spec.minus = true;
          spec.width = -spec.width;
        }
      } else bad += "%!(BADWIDTH)";
    } else {
      const n = parseNum(format, i);
      if (n.num !== undefined) spec.width = n.num;
      i = n.next;
    }
    if (format[i] === ".") {
      i++;
      if (format[i] === "*") {
        i++;
        const p = args[argi++];
        if (kindOf(p) === "int" && numberOf(p) >= 0 && !tooLarge(numberOf(p))) spec.prec = numberOf(p);
        else bad += "%!(BADPREC)";
      } else {
        const n = parseNum(format, i);
        spec.prec = n.num ?? 0;
        i = n.next;
      }
    }
    if (spec.minus) spec.zero = false;
    out += bad;
    if (i >= format.length) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i) as number);
    i += verb.length;
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatValue(args[argi++], verb, spec);
  }
  if (argi < args.length) {
    out += `%!(EXTRA ${args
      .slice(argi)
      .map((a) => (kindOf(a) === "nil" ? "<nil>" : `${typeName(a)}=${formatValue(a, "v", PLAIN)}`))
      .join(", ")})`;
  }
  return out;
}

/** Go's `tooLarge`: widths and precisions beyond a million are refused, never padded out. */
function tooLarge(n: number): boolean {
  return n > 1e6 || n < -1e6;
}

/**
 * Go's `parsenum`: the decimal number at `start`, if any, and where the format goes on. A number
 * that grows past {@link tooLarge} is no number, and the rest of the format is consumed (Go then
 * prints `%!(NOVERB)`).
 */
function parseNum(format: string, start: number): { num: number | undefined; next: number } {
  let num = 0;
  let i = start;
  for (; i < format.length; i++) {
    const digit = format.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    if (tooLarge(num)) return { num: undefined, next: format.length };
    num = num * 10 + digit;
  }
  return { num: i === start ? undefined : num, next: i };
}

function badVerb(v: unknown, verb: string): string {
  if (kindOf(v) === "nil") return `%!${verb}(<nil>)`;
  return `%!${verb}(${typeName(v)}=${formatValue(v, "v", PLAIN)})`;
}

function formatValue(v: unknown, verb: string, spec: Spec): string {
  if (verb === "T") return pad(typeName(v), spec);
  if (verb === "v" && spec.sharp) {
    throw new UnsupportedError("template: printf verb %#v is not supported", { op: "state.render" });
  }
  switch (kindOf(v)) {
    case "invalid":
      return verb === "v" ? pad("<invalid reflect.Value>", spec) : `%!${verb}(<invalid reflect.Value>)`;
    case "nil":
      return verb === "v" ? pad("<nil>", spec) : badVerb(v, verb);
    case "bool":
      return verb === "v" || verb === "t" ? pad(String(v), spec) : badVerb(v, verb);
    case "string":
      return formatString(v as string, verb, spec);
    case "int":
      return formatInt(numberOf(v), verb, spec, v);
    case "float":
      return formatFloat(numberOf(v), verb, spec, v);
    case "slice": {
      if (v instanceof Uint8Array && (verb === "s" || verb === "q" || verb === "x" || verb === "X")) {
        return formatString(Buffer.from(v).toString("latin1"), verb, spec);
      }
      return `[${sliceItems(v)
        .map((e) => formatValue(e, verb, spec))
        .join(" ")}]`;
    }
    case "map": {
      const entries = mapEntries(v);
      return `map[${sortedKeys(v)
        .map((k) => `${formatValue(k, verb, spec)}:${formatValue(entries.get(k), verb, spec)}`)
        .join(" ")}]`;
    }
  }
  return badVerb(v === NO_VALUE ? undefined : v, verb);
}

function formatString(s: string, verb: string, spec: Spec): string {
  const truncated = spec.prec === undefined ? s : [...s].slice(0, spec.prec).join("");
  switch (verb) {
    case "v":
    case "s":
      return pad(truncated, spec);
    case "q":
      if (
        spec.sharp &&
        !truncated.includes("`") &&
        [...truncated].every((c) => c === "\t" || isGoPrintable(c.codePointAt(0) as number))
      )
        return pad(`\`${truncated}\``, spec);
      return pad(quoteGo(truncated, spec.plus), spec);
    case "x":
    case "X": {
      const bytes = [...Buffer.from(truncated, "utf8")];
      let hex = bytes
        .map((b) => {
          const h = b.toString(16).padStart(2, "0");
          return (spec.sharp && spec.space ? "0x" : "") + h;
        })
        .join(spec.space ? " " : "");
      if (spec.sharp && !spec.space && hex !== "") hex = `0x${hex}`;
      return pad(verb === "X" ? hex.toUpperCase().replace(/0X/g, "0X") : hex, spec);
    }
  }
  return badVerb(s, verb);
}

function formatInt(n: number, verb: string, spec: Spec, original: unknown): string {
  const neg = n < 0;
  const abs = BigInt(Math.abs(n));
  let digits: string;
  let prefix = "";
  switch (verb) {
    case "v":
    case "d":
      digits = abs.toString(10);
      break;
    case "b":
      digits = abs.toString(2);
      if (spec.sharp) prefix = "0b";
      break;
    case "o":
      digits = abs.toString(8);
      if (spec.sharp) prefix = "0";
      break;
    case "O":
      digits = abs.toString(8);
      prefix = "0o";
      break;
    case "x":
      digits = abs.toString(16);
      if (spec.sharp) prefix = "0x";
      break;
    case "X":
      digits = abs.toString(16).toUpperCase();
      if (spec.sharp) prefix = "0X";
      break;
    case "c":
      return pad(n >= 0 && n <= 0x10ffff ? String.fromCodePoint(n) : "\ufffd", spec);
    case "q":
      return pad(quoteRune(n), spec);
    case "U": {
      const hex = abs.toString(16).toUpperCase().padStart(4, "0");
      const s = `U+${hex}`;
      return pad(spec.sharp && isGoPrintable(n) ? `${s} '${String.fromCodePoint(n)}'` : s, spec);
    }
    case "e":
    case "E":
    case "f":
    case "F":
    case "g":
    case "G":
      return badVerb(original, verb);
    default:
      return badVerb(original, verb);
  }
  if (spec.prec !== undefined) {
    digits = spec.prec === 0 && abs === 0n ? "" : digits.padStart(spec.prec, "0");
  }
  if (verb === "o" && spec.sharp && digits.startsWith("0")) prefix = "";
  const sign = neg ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  return padNumber(sign, prefix + digits, spec, spec.prec === undefined);
}

function quoteRune(n: number): string {
  if (n === 39) return "'\\''";
  if (n === 34) return `'"'`;
  const q = quoteGo(String.fromCodePoint(n));
  return `'${q.slice(1, -1)}'`;
}

function formatFloat(f: number, verb: string, spec: Spec, original: unknown): string {
  let body: string;
  switch (verb) {
    case "v":
    case "g":
    case "G":
      body = formatG(Math.abs(f), spec.prec ?? -1, spec.sharp);
      break;
    case "e":
    case "E":
      body = formatE(Math.abs(f), spec.prec ?? 6);
      break;
    case "f":
    case "F":
      body = formatF(Math.abs(f), spec.prec ?? 6);
      break;
    case "x":
    case "X":
      body = Number.isFinite(f) ? formatHexFloat(Math.abs(f), spec.prec ?? -1, verb, spec.sharp) : "";
      break;
    case "b":
      body = Number.isFinite(f) ? formatBinaryFloat(Math.abs(f)) : "";
      break;
    default:
      return badVerb(original, verb);
  }
  if (verb === "E" || verb === "G") body = body.toUpperCase();
  if (!Number.isFinite(f)) {
    const s = Number.isNaN(f) ? "NaN" : f > 0 ? (spec.plus ? "+Inf" : "Inf") : "-Inf";
    return pad(s, { ...spec, zero: false });
  }
  const neg = f < 0 || Object.is(f, -0);
  const sign = neg ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  return padNumber(sign, body, spec, true);
}

/** The significand (with the implicit bit) and the unbiased binary exponent of a finite double, as Go's strconv splits it. */
function floatParts(f: number): { mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, f);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const mant = bits & 0xfffffffffffffn;
  return biased === 0 ? { mant, exp: 1 - 1023 } : { mant: mant | (1n << 52n), exp: biased - 1023 };
}

const UINT64 = (1n << 64n) - 1n;

/**
 * `%x` / `%X` of a finite non-negative double as Go prints it: `0x1.8p+01`, the fraction in
 * the fewest hex digits (or `prec`, rounded half to even), the exponent in at least two digits;
 * `#` keeps trailing zeros as Go's fmt does.
 */
function formatHexFloat(f: number, prec: number, verb: string, sharp: boolean): string {
  let { mant, exp } = floatParts(f);
  if (mant === 0n) exp = 0;
  mant <<= 8n;
  while (mant !== 0n && (mant & (1n << 60n)) === 0n) {
    mant <<= 1n;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & ((1n << 60n) - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant <<= 60n - shift;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const digit = (m: bigint) => ((m >> 60n) & 15n).toString(16);
  let body = `0x${(mant >> 60n) & 1n}`;
  mant = (mant << 4n) & UINT64;
  if (prec < 0 && mant !== 0n) {
    body += ".";
    for (; mant !== 0n; mant = (mant << 4n) & UINT64) body += digit(mant);
  } else if (prec > 0) {
    body += ".";
    for (let i = 0; i < prec; i++, mant = (mant << 4n) & UINT64) body += digit(mant);
  }
  body += `p${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  if (sharp) body = keepHexDigits(body, verb === "x" ? (prec < 0 ? 6 : prec) : 0);
  return verb === "X" ? body.toUpperCase() : body;
}

/**
 * Go's `#` flag on a hex float: a decimal point always, and zeros up to `digits` significant
 * characters, counted as Go's fmt counts them (the `x` of `0x` included).
 */
function keepHexDigits(body: string, digits: number): string {
  const p = body.indexOf("p");
  let num = body.slice(0, p);
  let left = digits;
  let seenNonZero = false;
  for (const c of num) {
    if (c === ".") continue;
    if (c !== "0") seenNonZero = true;
    if (seenNonZero) left--;
  }
  if (!num.includes(".")) num += ".";
  return num + "0".repeat(Math.max(0, left)) + body.slice(p);
}

/** `%b` of a finite non-negative double as Go prints it: the significand in decimal and a binary exponent, `4503599627370496p-52`. */
function formatBinaryFloat(f: number): string {
  const { mant, exp } = floatParts(f);
  const e = exp - 52;
  return `${mant}p${e >= 0 ? "+" : ""}${e}`;
}

/** Decimal digits (no leading zeros) and the decimal point position of a finite non-negative double. */
interface Decimal {
  digits: string;
  dp: number;
}

/** The exact decimal expansion of a finite non-negative double. */
function exactDecimal(f: number): Decimal {
  if (f === 0) return { digits: "", dp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, f);
  const bits = view.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xfffffffffffffn;
  let e2: number;
  if (exp === 0) e2 = -1074;
  else {
    mant |= 1n << 52n;
    e2 = exp - 1075;
  }
  let digits: string;
  let dp: number;
  if (e2 >= 0) {
    digits = (mant << BigInt(e2)).toString();
    dp = digits.length;
  } else {
    digits = (mant * 5n ** BigInt(-e2)).toString();
    dp = digits.length + e2;
  }
  const stripped = digits.replace(/0+$/, "");
  const lead = stripped.length - stripped.replace(/^0+/, "").length;
  return { digits: stripped.slice(lead), dp: dp - lead };
}

/** Rounds to `nd` significant digits, half to even on the exact value (as Go's strconv does). */
function roundDigits(d: Decimal, nd: number): Decimal {
  if (nd < 0) return { digits: "", dp: d.dp };
  if (d.digits.length <= nd) return d;
  const keep = d.digits.slice(0, nd);
  const rest = d.digits.slice(nd);
  let up =
    (rest[0] as string) > "5" ||
    (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || (nd > 0 && Number(keep[nd - 1]) % 2 === 1)));
  if (rest[0] === "5" && rest.length === 1 && nd === 0) up = false;
  if (!up) return { digits: keep.replace(/0+$/, ""), dp: d.dp };
  let n = (BigInt(keep === "" ? "0" : keep) + 1n).toString();
  let dp = d.dp;
  if (n.length > keep.length) {
    dp++;
    if (keep !== "") n = n.slice(0, keep.length);
  }
  return { digits: n.replace(/0+$/, ""), dp };
}

/** The shortest digits that read back as `f` (JavaScript's `toExponential()` picks the same ones as Go). */
function shortest(f: number): Decimal {
  if (f === 0) return { digits: "", dp: 0 };
  const [mant = "", exp = "0"] = f.toExponential().split("e");
  return { digits: mant.replace(".", ""), dp: Number(exp) + 1 };
}

function formatE(f: number, prec: number, d?: Decimal): string {
  const dec = d ?? roundDigits(exactDecimal(f), prec + 1);
  const digits = dec.digits.padEnd(prec + 1, "0");
  const exp = dec.digits === "" ? 0 : dec.dp - 1;
  const mant =
    prec > 0 || d !== undefined
      ? `${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ""}`
      : (digits[0] as string);
  const e = Math.abs(exp).toString().padStart(2, "0");
  return `${mant}e${exp < 0 ? "-" : "+"}${e}`;
}

function formatF(f: number, prec: number, d?: Decimal): string {
  const dec = d ?? roundDigits(exactDecimal(f), exactDecimal(f).dp + prec);
  const { digits, dp } = dec;
  const intPart = dp > 0 ? digits.slice(0, dp).padEnd(dp, "0") : "0";
  let frac = "";
  for (let i = 0; i < prec; i++) {
    const idx = dp + i;
    frac += idx >= 0 && idx < digits.length ? digits[idx] : "0";
  }
  return prec > 0 ? `${intPart}.${frac}` : intPart;
}

function formatG(f: number, prec: number, sharp: boolean): string {
  if (!Number.isFinite(f)) return "";
  let p = prec;
  let dec: Decimal;
  if (p < 0) dec = shortest(f);
  else {
    if (p === 0) p = 1;
    dec = roundDigits(exactDecimal(f), p);
  }
  let eprec = p < 0 ? 6 : p;
  if (p >= 0 && eprec > dec.digits.length && dec.digits.length >= dec.dp) eprec = dec.digits.length;
  if (sharp) eprec = p < 0 ? 6 : p;
  const exp = dec.dp - 1;
  const nd = Math.max(dec.digits.length, 1);
  if (dec.digits !== "" && (exp < -4 || exp >= eprec)) {
    return formatE(f, nd - 1, { digits: dec.digits.padEnd(nd, "0"), dp: dec.dp });
  }
  if (dec.digits === "") return "0";
  return formatF(f, Math.max(dec.digits.length - dec.dp, 0), dec);
}

function pad(s: string, spec: Spec): string {
  const width = spec.width ?? 0;
  const len = [...s].length;
  if (len >= width) return s;
  const fill = (spec.zero ? "0" : " ").repeat(width - len);
  return spec.minus ? s + " ".repeat(width - len) : fill + s;
}

function padNumber(sign: string, body: string, spec: Spec, zeroAllowed: boolean): string {
  const width = spec.width ?? 0;
  const len = sign.length + body.length;
  if (len >= width) return sign + body;
  if (spec.minus) return sign + body + " ".repeat(width - len);
  if (spec.zero && zeroAllowed) return sign + "0".repeat(width - len) + body;
  return " ".repeat(width - len) + sign + body;
}
