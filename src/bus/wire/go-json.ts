import { WireError } from "./wire-error.js";

/** Deepest nesting Go's `encoding/json` accepts, counted over the whole document (its scanner's limit). */
export const MAX_JSON_DEPTH = 10_000;

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what a JSON string must escape.
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

/**
 * A JSON string literal exactly as Go's `encoding/json` (1.22 and later) writes it:
 * `JSON.stringify`'s escapes plus Go's HTML-safe escapes of `<`, `>`, `&`, U+2028 and U+2029;
 * a lone surrogate is written `\ufffd`, as Go writes a byte that is not valid UTF-8.
 */
export function goJsonString(value: string): string {
  // Most names, ids and timestamps need no escape at all.
  if (!NEEDS_ESCAPE.test(value)) return `"${value}"`;
  const json = JSON.stringify(value);
  if (!/[<>&\u2028\u2029]|\\u[dD][89a-fA-F]/.test(json)) return json;
  return json.replace(/\\\\|\\ud[89a-f][0-9a-f]{2}|[<>&\u2028\u2029]/g, (m) =>
    m === "\\\\" ? m : m.length === 1 ? (GO_ESCAPES[m] as string) : "\\ufffd",
  );
}

/**
 * What Go's `json.Marshal` does to a `json.RawMessage`: drops insignificant whitespace and
 * HTML-escapes `<`, `>`, `&`, U+2028 and U+2029 (they can only occur inside strings). Other
 * escapes and every other character stay as written. `raw` must already be valid JSON.
 */
export function compactGoJson(raw: string): string {
  if (!/[ \t\n\r<>&\u2028\u2029]/.test(raw)) return raw;
  let out = "";
  let inString = false;
  let escaped = false;
  let from = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      else if (c in GO_ESCAPES) {
        out += raw.slice(from, i) + GO_ESCAPES[c];
        from = i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      out += raw.slice(from, i);
      from = i + 1;
    }
  }
  return out + raw.slice(from);
}

/** One member of a scanned top-level object: its decoded name and its value's raw text. */
export interface JsonMember {
  readonly name: string;
  readonly raw: string;
}

/** What {@link scanJson} found. */
export interface ScannedJson {
  /** The top-level value's first character: `{`, `[`, `"`, `t`, `f`, `n` or a digit / `-`. */
  readonly kind: string;
  /** The members of a top-level object in document order (duplicates kept), else empty. */
  readonly members: readonly JsonMember[];
  /** The deepest nesting reached (a top-level object or array is depth 1). */
  readonly depth: number;
  /** The members of every top-level member's object value that `nested` picked, in document order. */
  readonly nested: readonly JsonMember[];
}

const OPEN_OBJECT = 123;
const OPEN_ARRAY = 91;

/**
 * Validates `text` as one JSON value the way Go's scanner does (RFC 8259: no control
 * characters in strings, any other character allowed; nesting up to `maxDepth`) and returns
 * the raw text of each top-level member, so values can be decoded or spliced verbatim; with
 * `nested`, also the members of the top-level members' object values it picks by name (a deliver
 * frame's envelope), so they need no second scan. The scan is iterative, so deep documents
 * cannot exhaust the stack. Throws {@link WireError} `malformed`.
 */
export function scanJson(text: string, maxDepth = MAX_JSON_DEPTH, nested?: (name: string) => boolean): ScannedJson {
  const stack: number[] = [];
  const members: JsonMember[] = [];
  const inner: JsonMember[] = [];
  let depth = 0;
  let name = "";
  let innerName = "";
  let valueStart = -1;
  let innerStart = -1;
  // True while inside a top-level member's object value that `nested` picked.
  let collecting = false;
  let i = skipWs(text, 0);
  const kind = text[i] ?? "";
  for (;;) {
    // A value starts at i.
    if (stack.length === 1 && stack[0] === OPEN_OBJECT) valueStart = i;
    else if (collecting && stack.length === 2) innerStart = i;
    const c = text.charCodeAt(i);
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      stack.push(c);
      if (stack.length > maxDepth) throw malformed(`nesting deeper than ${maxDepth}`);
      if (stack.length > depth) depth = stack.length;
      if (stack.length === 2 && c === OPEN_OBJECT && stack[0] === OPEN_OBJECT) collecting = nested?.(name) === true;
      i = skipWs(text, i + 1);
      if (text.charCodeAt(i) === (c === OPEN_OBJECT ? 125 : 93)) {
        stack.pop();
        i++;
      } else {
        if (c === OPEN_OBJECT) {
          const keyEnd = scanString(text, i);
          if (stack.length === 1) name = decodeName(text.slice(i, keyEnd));
          else if (collecting && stack.length === 2) innerName = decodeName(text.slice(i, keyEnd));
          i = colon(text, keyEnd);
        }
        continue;
      }
    } else if (c === 34) i = scanString(text, i);
    else if (c === 116) i = literal(text, i, "true");
    else if (c === 102) i = literal(text, i, "false");
    else if (c === 110) i = literal(text, i, "null");
    else i = scanNumber(text, i);
    // A value ended at i: record a top-level member, then close containers or go on to the next element.
    for (;;) {
      if (stack.length === 0) {
        if (skipWs(text, i) !== text.length) throw malformed(`trailing data at ${i}`);
        return { kind, members, depth, nested: inner };
      }
      if (stack.length === 1 && stack[0] === OPEN_OBJECT) {
        members.push({ name, raw: text.slice(valueStart, i) });
        collecting = false;
      } else if (collecting && stack.length === 2) inner.push({ name: innerName, raw: text.slice(innerStart, i) });
      const top = stack[stack.length - 1] as number;
      i = skipWs(text, i);
      const next = text.charCodeAt(i);
      if (next === 44) {
        i = skipWs(text, i + 1);
        if (top === OPEN_OBJECT) {
          const keyEnd = scanString(text, i);
          if (stack.length === 1) name = decodeName(text.slice(i, keyEnd));
          else if (collecting && stack.length === 2) innerName = decodeName(text.slice(i, keyEnd));
          i = colon(text, keyEnd);
        }
        break;
      }
      if (next !== (top === OPEN_OBJECT ? 125 : 93)) throw malformed(`expected ',' or a closing bracket at ${i}`);
      stack.pop();
      i++;
    }
  }
}

function colon(text: string, keyEnd: number): number {
  const j = skipWs(text, keyEnd);
  if (text.charCodeAt(j) !== 58) throw malformed(`expected ':' at ${j}`);
  return skipWs(text, j + 1);
}

function decodeName(quoted: string): string {
  return quoted.indexOf("\\") < 0 ? quoted.slice(1, -1) : (JSON.parse(quoted) as string);
}

function malformed(detail: string): WireError {
  return new WireError("malformed", `malformed JSON: ${detail}`);
}

/** The index of the first character at or after `i` that is not JSON whitespace. */
export function skipWs(s: string, i: number): number {
  let j = i;
  for (;;) {
    const c = s.charCodeAt(j);
    if (c === 32 || c === 9 || c === 10 || c === 13) j++;
    else return j;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function scanNumber(s: string, i: number): number {
  NUMBER.lastIndex = i;
  if (NUMBER.exec(s) === null) {
    const c = s[i];
    throw malformed(`unexpected ${c === undefined ? "end of input" : `'${c}'`} at ${i}`);
  }
  return NUMBER.lastIndex;
}

function scanString(s: string, i: number): number {
  if (s.charCodeAt(i) !== 34) throw malformed(`expected a string at ${i}`);
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34) return j + 1;
    if (c < 0x20) throw malformed(`control character in a string at ${j}`);
    if (c === 92) {
      const e = s.charCodeAt(j + 1);
      if (e === 117) {
        if (!/^[0-9a-fA-F]{4}$/.test(s.slice(j + 2, j + 6))) throw malformed(`bad \\u escape at ${j}`);
        j += 5;
      } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
        j++;
      } else throw malformed(`bad escape at ${j}`);
    }
  }
  throw malformed("unterminated string");
}

function literal(s: string, i: number, word: string): number {
  if (s.startsWith(word, i)) return i + word.length;
  throw malformed(`unexpected token at ${i}`);
}
