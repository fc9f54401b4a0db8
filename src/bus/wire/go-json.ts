import { WireError } from "./wire-error.js";

/** Nesting deeper than this is refused (Go allows 10000; a JS recursion that deep risks the stack). */
const MAX_DEPTH = 1000;

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/**
 * A JSON string literal exactly as Go's `encoding/json` writes it: `JSON.stringify`'s escapes
 * (which match Go 1.22+ for control characters) plus Go's HTML-safe escapes of `<`, `>`, `&`,
 * U+2028 and U+2029; a lone surrogate becomes U+FFFD as in Go's UTF-8 handling.
 */
export function goJsonString(value: string): string {
  return JSON.stringify(value).replace(/\\\\|\\ud[89a-f][0-9a-f]{2}|[<>&\u2028\u2029]/g, (m) =>
    m === "\\\\" ? m : m.length === 1 ? (GO_ESCAPES[m] as string) : "\\ufffd",
  );
}

/**
 * What Go's `json.Marshal` does to a `json.RawMessage`: drops insignificant whitespace and
 * HTML-escapes `<`, `>`, `&`, U+2028 and U+2029 (they can only occur inside strings). Other
 * escapes stay as written. `raw` must already be valid JSON (see {@link scanJsonObject}).
 */
export function compactGoJson(raw: string): string {
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

/**
 * Validates `text` as one JSON object (strict RFC 8259, as Go parses it) and returns the raw
 * source text of each top-level member's value, so values can be spliced verbatim. Throws
 * {@link WireError} `malformed` for invalid JSON, a non-object, or a repeated key.
 */
export function scanJsonObject(text: string): Map<string, string> {
  const members = new Map<string, string>();
  let i = skipWs(text, 0);
  if (text[i] !== "{") throw malformed("expected a JSON object");
  i = skipWs(text, i + 1);
  if (text[i] === "}") {
    i++;
  } else {
    for (;;) {
      if (text[i] !== '"') throw malformed(`expected a member name at ${i}`);
      const keyEnd = scanString(text, i);
      const key = JSON.parse(text.slice(i, keyEnd)) as string;
      i = skipWs(text, keyEnd);
      if (text[i] !== ":") throw malformed(`expected ':' at ${i}`);
      const start = skipWs(text, i + 1);
      const end = scanValue(text, start, 1);
      if (members.has(key)) throw malformed(`member "${key}" appears twice`);
      members.set(key, text.slice(start, end));
      i = skipWs(text, end);
      if (text[i] === ",") {
        i = skipWs(text, i + 1);
        continue;
      }
      if (text[i] === "}") {
        i++;
        break;
      }
      throw malformed(`expected ',' or '}' at ${i}`);
    }
  }
  if (skipWs(text, i) !== text.length) throw malformed("trailing data after the JSON object");
  return members;
}

function malformed(detail: string): WireError {
  return new WireError("malformed", `malformed JSON: ${detail}`);
}

function skipWs(s: string, i: number): number {
  let j = i;
  for (;;) {
    const c = s.charCodeAt(j);
    if (c === 32 || c === 9 || c === 10 || c === 13) j++;
    else return j;
  }
}

function scanValue(s: string, i: number, depth: number): number {
  if (depth > MAX_DEPTH) throw malformed(`nesting deeper than ${MAX_DEPTH}`);
  const c = s[i];
  if (c === '"') return scanString(s, i);
  if (c === "{" || c === "[") return scanContainer(s, i, depth);
  if (c === "t") return scanLiteral(s, i, "true");
  if (c === "f") return scanLiteral(s, i, "false");
  if (c === "n") return scanLiteral(s, i, "null");
  const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  m.lastIndex = i;
  if (m.exec(s) === null) throw malformed(`unexpected ${c === undefined ? "end of input" : `'${c}'`} at ${i}`);
  return m.lastIndex;
}

function scanContainer(s: string, i: number, depth: number): number {
  const close = s[i] === "{" ? "}" : "]";
  let j = skipWs(s, i + 1);
  if (s[j] === close) return j + 1;
  for (;;) {
    if (close === "}") {
      if (s[j] !== '"') throw malformed(`expected a member name at ${j}`);
      j = skipWs(s, scanString(s, j));
      if (s[j] !== ":") throw malformed(`expected ':' at ${j}`);
      j = skipWs(s, j + 1);
    }
    j = skipWs(s, scanValue(s, j, depth + 1));
    if (s[j] === ",") j = skipWs(s, j + 1);
    else if (s[j] === close) return j + 1;
    else throw malformed(`expected ',' or '${close}' at ${j}`);
  }
}

function scanString(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 34) return j + 1;
    if (c < 0x20) throw malformed(`control character in a string at ${j}`);
    if (c === 92) {
      const e = s[j + 1];
      if (e === "u") {
        if (!/^[0-9a-fA-F]{4}$/.test(s.slice(j + 2, j + 6))) throw malformed(`bad \\u escape at ${j}`);
        j += 5;
      } else if (e !== undefined && '"\\/bfnrt'.includes(e)) j++;
      else throw malformed(`bad escape at ${j}`);
    }
  }
  throw malformed("unterminated string");
}

function scanLiteral(s: string, i: number, word: string): number {
  if (s.startsWith(word, i)) return i + word.length;
  throw malformed(`unexpected token at ${i}`);
}
