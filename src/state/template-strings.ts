const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\u0007",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  "'": "'",
  '"': '"',
};

/**
 * Go's `strconv.Unquote` for the string literals of templates: `"..."` with Go escapes
 * (`\n`, `\x41`, `\101`, `\u00e9`, `\U0001F600`) or a raw `` `...` `` string. `undefined` when
 * the literal is malformed.
 */
export function unquoteGo(quoted: string): string | undefined {
  if (quoted.length >= 2 && quoted.startsWith("`") && quoted.endsWith("`")) {
    return quoted.slice(1, -1).replace(/\r/g, "");
  }
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) return undefined;
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const pushString = (s: string) => {
    for (const b of Buffer.from(s, "utf8")) bytes.push(b);
  };
  for (let i = 0; i < body.length; ) {
    const c = body[i] as string;
    if (c === '"' || c === "\n") return undefined;
    if (c !== "\\") {
      const cp = body.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      pushString(ch);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    if (e in SIMPLE_ESCAPES && e !== "'") {
      pushString(SIMPLE_ESCAPES[e] as string);
      i += 2;
    } else if (e === "x") {
      const hex = body.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(Number.parseInt(hex, 16));
      i += 4;
    } else if (e >= "0" && e <= "7") {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || Number.parseInt(oct, 8) > 255) return undefined;
      bytes.push(Number.parseInt(oct, 8));
      i += 4;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return undefined;
      const cp = Number.parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return undefined;
      pushString(String.fromCodePoint(cp));
      i += 2 + n;
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Whether Go's `unicode.IsPrint` holds for the code point (letters, marks, numbers, punctuation, symbols, ASCII space). */
export function isGoPrintable(cp: number): boolean {
  if (cp === 0x20) return true;
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(String.fromCodePoint(cp));
}

/** Go's `strconv.Quote`: a double-quoted literal with Go escapes for non-printable characters. */
export function quoteGo(s: string, asciiOnly = false): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (cp < 0x80 ? cp >= 0x20 && cp < 0x7f : !asciiOnly && isGoPrintable(cp)) out += ch;
    else out += escapeRune(cp);
  }
  return `${out}"`;
}

function escapeRune(cp: number): string {
  switch (cp) {
    case 7:
      return "\\a";
    case 8:
      return "\\b";
    case 12:
      return "\\f";
    case 10:
      return "\\n";
    case 13:
      return "\\r";
    case 9:
      return "\\t";
    case 11:
      return "\\v";
  }
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp === 0xfffd) return "\\ufffd";
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}
