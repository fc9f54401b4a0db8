/** What a template token is. */
export type TokenKind =
  | "text"
  | "leftDelim"
  | "rightDelim"
  | "space"
  | "identifier"
  | "keyword"
  | "bool"
  | "nil"
  | "dot"
  | "field"
  | "variable"
  | "number"
  | "string"
  | "rawString"
  | "char"
  | "pipe"
  | "leftParen"
  | "rightParen"
  | "declare"
  | "assign"
  | "comma"
  | "punct"
  | "eof"
  | "error";

/** One token of a template. `pos` is the UTF-16 offset of its start, `line` its 1-based line. */
export interface Token {
  readonly kind: TokenKind;
  readonly value: string;
  readonly pos: number;
  readonly line: number;
}

const KEYWORDS = new Set(["block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"]);
const SPACE = " \t\r\n";
const LEFT = "{{";
const RIGHT = "}}";

/**
 * Splits a template into tokens the way Go's `text/template/parse` lexer does: text between
 * actions, `{{- ` / ` -}}` trim markers (removing the whitespace beside them), `{{/* *\/}}`
 * comments (dropped), and the operands, pipes and keywords inside actions. A lexical error ends
 * the list with an `error` token whose value is Go's message.
 */
export function lexTemplate(input: string): Token[] {
  return new Lexer(input).run();
}

class Lexer {
  readonly #in: string;
  readonly #tokens: Token[] = [];
  #pos = 0;
  #start = 0;
  #line = 1;
  #startLine = 1;
  #parenDepth = 0;

  constructor(input: string) {
    this.#in = input;
  }

  run(): Token[] {
    while (this.#text()) {
      if (!this.#action()) break;
    }
    return this.#tokens;
  }

  /** Emits text up to the next action; false at the end of input. */
  #text(): boolean {
    const at = this.#in.indexOf(LEFT, this.#pos);
    if (at < 0) {
      this.#pos = this.#in.length;
      if (this.#pos > this.#start) this.#emit("text");
      this.#emit("eof");
      return false;
    }
    this.#pos = at;
    let trim = 0;
    if (hasLeftTrim(this.#in, at + LEFT.length)) {
      const before = this.#in.slice(this.#start, at);
      trim = before.length - trimRight(before).length;
    }
    this.#pos = at - trim;
    if (this.#pos > this.#start) this.#emit("text");
    this.#pos = at;
    this.#ignore();
    return true;
  }

  /** Lexes one action (or comment) starting at `{{`; false after an error or EOF token. */
  #action(): boolean {
    this.#pos += LEFT.length;
    const trim = hasLeftTrim(this.#in, this.#pos);
    const after = trim ? 2 : 0;
    if (this.#in.startsWith("/*", this.#pos + after)) {
      this.#pos += after;
      this.#ignore();
      return this.#comment();
    }
    this.#emit("leftDelim");
    this.#pos += after;
    this.#ignore();
    this.#parenDepth = 0;
    for (;;) {
      const right = this.#atRight();
      if (right !== undefined) {
        if (this.#parenDepth !== 0) return this.#error("unclosed left paren");
        return this.#rightDelim(right);
      }
      if (!this.#insideAction()) return false;
    }
  }

  #comment(): boolean {
    this.#pos += 2;
    const end = this.#in.indexOf("*/", this.#pos);
    if (end < 0) return this.#error("unclosed comment");
    this.#pos = end + 2;
    const right = this.#atRight();
    if (right === undefined) return this.#error("comment ends before closing delimiter");
    this.#countLines();
    this.#pos += right ? 2 + RIGHT.length : RIGHT.length;
    if (right) this.#pos += leftTrimLength(this.#in, this.#pos);
    this.#countLines();
    this.#ignore();
    return true;
  }

  /** `true` for ` -}}`, `false` for `}}`, `undefined` when not at a right delimiter. */
  #atRight(): boolean | undefined {
    if (hasRightTrim(this.#in, this.#pos) && this.#in.startsWith(RIGHT, this.#pos + 2)) return true;
    if (this.#in.startsWith(RIGHT, this.#pos)) return false;
    return undefined;
  }

  #rightDelim(trim: boolean): boolean {
    if (trim) {
      this.#pos += 2;
      this.#ignore();
    }
    this.#pos += RIGHT.length;
    this.#emit("rightDelim");
    if (trim) {
      this.#pos += leftTrimLength(this.#in, this.#pos);
      this.#countLines();
      this.#ignore();
    }
    return true;
  }

  /** Lexes one token inside an action; false on error. */
  #insideAction(): boolean {
    const c = this.#in[this.#pos];
    if (c === undefined) return this.#error("unclosed action");
    if (SPACE.includes(c)) {
      while (this.#pos < this.#in.length && SPACE.includes(this.#in[this.#pos] as string)) {
        if (this.#atRight() !== undefined) break;
        this.#pos++;
      }
      this.#emit("space");
      return true;
    }
    this.#pos++;
    switch (c) {
      case "=":
        this.#emit("assign");
        return true;
      case ":":
        if (this.#in[this.#pos] !== "=") return this.#error("expected :=");
        this.#pos++;
        this.#emit("declare");
        return true;
      case "|":
        this.#emit("pipe");
        return true;
      case ",":
        this.#emit("comma");
        return true;
      case '"':
        return this.#quote();
      case "`":
        return this.#rawQuote();
      case "$":
        return this.#variable();
      case "'":
        return this.#char();
      case "(":
        this.#parenDepth++;
        this.#emit("leftParen");
        return true;
      case ")":
        this.#parenDepth--;
        this.#emit("rightParen");
        if (this.#parenDepth < 0) return this.#error("unexpected right paren U+0029 ')'");
        return true;
    }
    if (c === ".") {
      const next = this.#in[this.#pos];
      if (next === undefined || next < "0" || next > "9") return this.#field();
    }
    if (c === "." || c === "+" || c === "-" || isDigit(c)) {
      this.#pos--;
      return this.#number();
    }
    if (isAlphaNumeric(c)) {
      this.#pos--;
      return this.#identifier();
    }
    const code = c.codePointAt(0) as number;
    if (code < 0x7f && code >= 0x20) {
      this.#emit("punct");
      return true;
    }
    return this.#error(
      `unrecognized character in action: ${describeRune(this.#in.codePointAt(this.#pos - 1) as number)}`,
    );
  }

  #identifier(): boolean {
    while (this.#pos < this.#in.length && isAlphaNumeric(this.#in[this.#pos] as string)) this.#pos++;
    if (!this.#atTerminator())
      return this.#error(`bad character ${describeRune(this.#in.codePointAt(this.#pos) as number)}`);
    const word = this.#in.slice(this.#start, this.#pos);
    if (KEYWORDS.has(word)) this.#emit("keyword");
    else if (word === "true" || word === "false") this.#emit("bool");
    else if (word === "nil") this.#emit("nil");
    else this.#emit("identifier");
    return true;
  }

  #field(): boolean {
    if (this.#atTerminator()) {
      this.#emit("dot");
      return true;
    }
    while (this.#pos < this.#in.length && isAlphaNumeric(this.#in[this.#pos] as string)) this.#pos++;
    if (!this.#atTerminator())
      return this.#error(`bad character ${describeRune(this.#in.codePointAt(this.#pos) as number)}`);
    this.#emit("field");
    return true;
  }

  #variable(): boolean {
    if (this.#atTerminator()) {
      this.#emit("variable");
      return true;
    }
    while (this.#pos < this.#in.length && isAlphaNumeric(this.#in[this.#pos] as string)) this.#pos++;
    if (!this.#atTerminator())
      return this.#error(`bad character ${describeRune(this.#in.codePointAt(this.#pos) as number)}`);
    this.#emit("variable");
    return true;
  }

  /** Whether the next character can end an operand (space, delimiter, pipe, paren...). */
  #atTerminator(): boolean {
    const c = this.#in[this.#pos];
    if (c === undefined || SPACE.includes(c)) return true;
    if (".,|:)(=".includes(c)) return true;
    return this.#in.startsWith(RIGHT, this.#pos);
  }

  #number(): boolean {
    const m =
      /^[+-]?(0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*([pP][+-]?[0-9_]+)?|0[bB][01_]+|0[oO][0-7_]+|[0-9_]*\.?[0-9_]*([eE][+-]?[0-9_]+)?)i?/.exec(
        this.#in.slice(this.#pos),
      );
    this.#pos += m === null ? 0 : (m[0] as string).length;
    if (isAlphaNumeric(this.#in[this.#pos] ?? " ")) {
      this.#pos++;
      return this.#error(`bad number syntax: "${this.#in.slice(this.#start, this.#pos)}"`);
    }
    this.#emit("number");
    return true;
  }

  #quote(): boolean {
    return this.#quoted('"', "string", "unterminated quoted string");
  }

  #rawQuote(): boolean {
    const end = this.#in.indexOf("`", this.#pos);
    if (end < 0) return this.#error("unterminated raw quoted string");
    this.#pos = end + 1;
    this.#emit("rawString");
    return true;
  }

  #char(): boolean {
    return this.#quoted("'", "char", "unterminated character constant");
  }

  /** Scans to the closing `quote`, honouring backslash escapes; a newline or EOF first is `message`. */
  #quoted(quote: string, kind: TokenKind, message: string): boolean {
    for (;;) {
      const c = this.#in[this.#pos++];
      if (c === "\\") {
        const n = this.#in[this.#pos];
        if (n !== undefined && n !== "\n") {
          this.#pos++;
          continue;
        }
      }
      if (c === undefined || c === "\n") return this.#error(message);
      if (c === quote) break;
    }
    this.#emit(kind);
    return true;
  }

  #emit(kind: TokenKind): void {
    this.#tokens.push({ kind, value: this.#in.slice(this.#start, this.#pos), pos: this.#start, line: this.#startLine });
    this.#countLines();
    this.#start = this.#pos;
    this.#startLine = this.#line;
  }

  #countLines(): void {
    for (let i = this.#start; i < this.#pos; i++) if (this.#in.charCodeAt(i) === 10) this.#line++;
    this.#start = this.#pos;
  }

  #ignore(): void {
    this.#countLines();
    this.#start = this.#pos;
    this.#startLine = this.#line;
  }

  #error(message: string): boolean {
    this.#tokens.push({ kind: "error", value: message, pos: this.#start, line: this.#startLine });
    return false;
  }
}

function hasLeftTrim(s: string, at: number): boolean {
  return s[at] === "-" && SPACE.includes(s[at + 1] ?? "x");
}

function hasRightTrim(s: string, at: number): boolean {
  return SPACE.includes(s[at] ?? "x") && s[at + 1] === "-";
}

function trimRight(s: string): string {
  let end = s.length;
  while (end > 0 && SPACE.includes(s[end - 1] as string)) end--;
  return s.slice(0, end);
}

function leftTrimLength(s: string, at: number): number {
  let p = at;
  while (p < s.length && SPACE.includes(s[p] as string)) p++;
  return p - at;
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

function isAlphaNumeric(c: string): boolean {
  return c === "_" || /^[\p{L}\p{Nd}]$/u.test(c);
}

/** Go's `%#U`: `U+0023 '#'`. */
export function describeRune(code: number): string {
  const hex = code.toString(16).toUpperCase().padStart(4, "0");
  const ch = String.fromCodePoint(code);
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(ch) || ch === " " ? `U+${hex} '${ch}'` : `U+${hex}`;
}
