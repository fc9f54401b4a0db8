import { TemplateError, UnsupportedError } from "../errors.js";
import { lexTemplate, type Token, type TokenKind } from "./template-lexer.js";
import {
  type ArgNode,
  type BranchNode,
  type CommandNode,
  type NumberNode,
  nodeString,
  type PipeNode,
  type TemplateNode,
  type VariableNode,
} from "./template-nodes.js";
import { unquoteGo } from "./template-strings.js";

/** A parsed template: the main body and the templates it defines (`define`, `block`). */
export interface ParsedTemplate {
  /** The template's name in error messages (Go's `ParseName`). */
  readonly name: string;
  /** The source text, for error positions. */
  readonly source: string;
  /** The main body. */
  readonly root: readonly TemplateNode[];
  /** Templates by name, the main body included under {@link ParsedTemplate.name}. */
  readonly templates: ReadonlyMap<string, readonly TemplateNode[]>;
}

/** The functions a template may call (Go's builtins). */
export const BUILTIN_FUNCTIONS = new Set([
  "and",
  "call",
  "html",
  "index",
  "slice",
  "js",
  "len",
  "not",
  "or",
  "print",
  "printf",
  "println",
  "urlquery",
  "eq",
  "ge",
  "gt",
  "le",
  "lt",
  "ne",
]);

type End = { readonly type: "end" | "else"; readonly pos: number };
type Item = TemplateNode | End;

class ParseFailure extends Error {}

/**
 * Parses a Go `text/template` source. Errors are {@link TemplateError}s with Go's message
 * (`template: NAME:LINE: ...`); constructs Go has but this implementation does not (complex
 * constants) are {@link UnsupportedError}s naming them.
 */
export function parseGoTemplate(source: string, name = "template"): ParsedTemplate {
  const templates = new Map<string, readonly TemplateNode[]>();
  const parser = new Parser(lexTemplate(source), name, templates);
  let root: readonly TemplateNode[];
  try {
    root = parser.parseMain();
  } catch (err) {
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      // Stack sizes differ between Node.js versions and threads: below MAX_NESTING the stack may still end.
      throw new UnsupportedError(`template: ${name}: nested too deeply for this implementation`, {
        op: "state.render",
        cause: err,
      });
    }
    throw err;
  }
  if (!templates.has(name) || isEmpty(templates.get(name) as readonly TemplateNode[])) templates.set(name, root);
  return { name, source, root, templates };
}

function isEmpty(list: readonly TemplateNode[]): boolean {
  return list.every((n) => n.type === "text" && n.text.trim() === "");
}

/**
 * How deeply parentheses and control structures (`if`, `else if`, `range`, `with`, `block`) may
 * nest. Go has no limit; a JavaScript stack has one, so deeper templates get an
 * {@link UnsupportedError} instead of a stack overflow (parsing and executing recurse per level).
 */
export const MAX_NESTING = 300;

class Parser {
  readonly #tokens: Token[];
  readonly #name: string;
  readonly #templates: Map<string, readonly TemplateNode[]>;
  #i = 0;
  /** The furthest token read: Go reports the line of the last token its lexer produced. */
  #furthest = 0;
  #vars: string[] = ["$"];
  #rangeDepth = 0;
  #actionLine = 0;
  #nesting = 0;

  constructor(tokens: Token[], name: string, templates: Map<string, readonly TemplateNode[]>) {
    this.#tokens = tokens;
    this.#name = name;
    this.#templates = templates;
  }

  parseMain(): TemplateNode[] {
    try {
      const root: TemplateNode[] = [];
      while (this.#peek().kind !== "eof") {
        if (this.#peek().kind === "leftDelim") {
          const mark = this.#i;
          this.#next();
          const t = this.#nextNonSpace();
          if (t.kind === "keyword" && t.value === "define") {
            this.#actionLine = t.line;
            this.#parseDefinition();
            this.#actionLine = 0;
            continue;
          }
          this.#i = mark;
        }
        const n = this.#textOrAction();
        if (n.type === "end" || n.type === "else") this.#fail(`unexpected {{${n.type}}}`);
        root.push(n as TemplateNode);
      }
      return root;
    } catch (err) {
      if (err instanceof ParseFailure) throw new TemplateError(err.message, this.#line(), 0, { op: "state.render" });
      throw err;
    }
  }

  #line(): number {
    return this.#at(this.#furthest).line;
  }

  #fail(message: string): never {
    throw new ParseFailure(`template: ${this.#name}:${this.#line()}: ${message}`);
  }

  #at(i: number): Token {
    return this.#tokens[Math.min(i, this.#tokens.length - 1)] as Token;
  }

  #next(): Token {
    const t = this.#at(this.#i);
    this.#furthest = Math.max(this.#furthest, Math.min(this.#i, this.#tokens.length - 1));
    this.#i++;
    return t;
  }

  #peek(): Token {
    this.#furthest = Math.max(this.#furthest, Math.min(this.#i, this.#tokens.length - 1));
    return this.#at(this.#i);
  }

  #nextNonSpace(): Token {
    let t = this.#next();
    while (t.kind === "space") t = this.#next();
    return t;
  }

  /** Like Go's `peekNonSpace`: skips (consumes) spaces, then peeks. */
  #peekNonSpace(): Token {
    const t = this.#nextNonSpace();
    this.#i--;
    return t;
  }

  #expect(kind: TokenKind, context: string): Token {
    const t = this.#nextNonSpace();
    if (t.kind !== kind) this.#unexpected(t, context);
    return t;
  }

  #unexpected(t: Token, context: string): never {
    if (t.kind === "error") {
      let extra = "";
      if (this.#actionLine !== 0 && this.#actionLine !== t.line) {
        extra = ` in action started at ${this.#name}:${this.#actionLine}`;
        if (t.value.endsWith(" action")) extra = extra.slice(" in action".length);
      }
      this.#fail(`${t.value}${extra}`);
    }
    this.#fail(`unexpected ${tokenString(t)} in ${context}`);
  }

  #textOrAction(): Item {
    const t = this.#nextNonSpace();
    switch (t.kind) {
      case "text":
        return { type: "text", pos: t.pos, text: t.value };
      case "leftDelim": {
        this.#actionLine = t.line;
        try {
          return this.#action();
        } finally {
          this.#actionLine = 0;
        }
      }
      default:
        this.#unexpected(t, "input");
    }
  }

  #action(): Item {
    const t = this.#nextNonSpace();
    if (t.kind === "keyword") {
      switch (t.value) {
        case "block":
          return this.#blockControl();
        case "break":
        case "continue":
          return this.#loopControl(t);
        case "else":
          return this.#elseControl();
        case "end":
          return { type: "end", pos: this.#expect("rightDelim", "end").pos };
        case "if":
          return { type: "if", ...this.#parseControl(true, "if") };
        case "range":
          return { type: "range", ...this.#parseControl(false, "range") };
        case "template":
          return this.#templateControl();
        case "with":
          return { type: "with", ...this.#parseControl(false, "with") };
      }
    }
    this.#i--;
    const start = this.#peek();
    return { type: "action", pos: start.pos, pipe: this.#pipeline("command", "rightDelim") };
  }

  #loopControl(t: Token): Item {
    const kind = t.value as "break" | "continue";
    const end = this.#nextNonSpace();
    if (end.kind !== "rightDelim") this.#unexpected(end, `{{${kind}}}`);
    if (this.#rangeDepth === 0) this.#fail(`{{${kind}}} outside {{range}}`);
    return { type: kind, pos: t.pos };
  }

  #elseControl(): Item {
    const peek = this.#peekNonSpace();
    if (peek.kind === "keyword" && peek.value === "if") return { type: "else", pos: peek.pos };
    return { type: "else", pos: this.#expect("rightDelim", "else").pos };
  }

  /** Runs `fn` one nesting level deeper, refusing more than {@link MAX_NESTING} levels. */
  #nested<T>(construct: string, fn: () => T): T {
    if (this.#nesting >= MAX_NESTING) {
      throw new UnsupportedError(
        `template: ${this.#name}:${this.#line()}: ${construct} nested more than ${MAX_NESTING} levels deep is not supported`,
        { op: "state.render" },
      );
    }
    this.#nesting++;
    try {
      return fn();
    } finally {
      this.#nesting--;
    }
  }

  #parseControl(allowElseIf: boolean, context: string): BranchNode {
    return this.#nested(context, () => this.#control(allowElseIf, context));
  }

  #control(allowElseIf: boolean, context: string): BranchNode {
    const depth = this.#vars.length;
    try {
      const pipe = this.#pipeline(context, "rightDelim");
      if (context === "range") this.#rangeDepth++;
      let [list, next] = this.#itemList();
      if (context === "range") this.#rangeDepth--;
      let elseList: TemplateNode[] | undefined;
      if (next.type === "else") {
        if (allowElseIf && this.#peek().kind === "keyword" && this.#peek().value === "if") {
          this.#next();
          elseList = [{ type: "if", ...this.#parseControl(true, "if") }];
        } else {
          [elseList, next] = this.#itemList();
          if (next.type !== "end") this.#fail(`expected end; found {{${next.type}}}`);
        }
      }
      list = list as TemplateNode[];
      return { pos: pipe.pos, pipe, list, elseList };
    } finally {
      this.#vars.length = depth;
    }
  }

  #itemList(): [TemplateNode[], End] {
    const list: TemplateNode[] = [];
    while (this.#peekNonSpace().kind !== "eof") {
      const n = this.#textOrAction();
      if (n.type === "end" || n.type === "else") return [list, n as End];
      list.push(n as TemplateNode);
    }
    this.#fail("unexpected EOF");
  }

  #templateName(t: Token, context: string): string {
    if (t.kind !== "string" && t.kind !== "rawString") this.#unexpected(t, context);
    return this.#unquote(t.value);
  }

  #templateControl(): Item {
    const context = "template clause";
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    let pipe: PipeNode | undefined;
    if (this.#nextNonSpace().kind !== "rightDelim") {
      this.#i--;
      pipe = this.#pipeline(context, "rightDelim");
    }
    return { type: "template", pos: t.pos, name, pipe };
  }

  #blockControl(): Item {
    const context = "block clause";
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    const pipe = this.#pipeline(context, "rightDelim");
    this.#nested("block", () => this.#templateBody(name, context));
    return { type: "template", pos: t.pos, name, pipe };
  }

  #parseDefinition(): void {
    const context = "define clause";
    const name = this.#templateName(this.#nextNonSpace(), context);
    this.#expect("rightDelim", context);
    this.#templateBody(name, context);
  }

  /** Parses a `define` or `block` body up to its `{{end}}`, with its own variables, and adds it. */
  #templateBody(name: string, context: string): void {
    const outer = this.#vars;
    this.#vars = ["$"];
    const [body, end] = this.#itemList();
    this.#vars = outer;
    if (end.type !== "end") this.#fail(`unexpected {{${end.type}}} in ${context}`);
    this.#addTemplate(name, body);
  }

  #addTemplate(name: string, body: TemplateNode[]): void {
    const old = this.#templates.get(name);
    if (old === undefined || isEmpty(old)) {
      this.#templates.set(name, body);
      return;
    }
    if (!isEmpty(body)) this.#fail(`template: multiple definition of template ${JSON.stringify(name)}`);
  }

  #pipeline(context: string, end: TokenKind): PipeNode {
    const start = this.#peekNonSpace();
    const decl: VariableNode[] = [];
    let isAssign = false;
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.kind !== "variable") break;
      const mark = this.#i;
      this.#nextNonSpace();
      const afterVar = this.#peek();
      const next = this.#peekNonSpace();
      if (next.kind === "assign" || next.kind === "declare") {
        isAssign = next.kind === "assign";
        this.#nextNonSpace();
        decl.push({ type: "variable", pos: v.pos, ident: [v.value] });
        this.#vars.push(v.value);
      } else if (next.kind === "comma") {
        this.#nextNonSpace();
        decl.push({ type: "variable", pos: v.pos, ident: [v.value] });
        this.#vars.push(v.value);
        if (context === "range" && decl.length < 2) {
          const k = this.#peekNonSpace().kind;
          if (k === "variable" || k === "rightDelim" || k === "rightParen") continue;
          this.#fail("range can only initialize variables");
        }
        this.#fail(`too many declarations in ${context}`);
      } else if (afterVar.kind === "space") {
        this.#i = mark;
      } else {
        this.#i = mark;
      }
      break;
    }
    const cmds: CommandNode[] = [];
    for (;;) {
      const t = this.#nextNonSpace();
      if (t.kind === end) {
        if (cmds.length === 0) this.#fail(`missing value for ${context}`);
        cmds.slice(1).forEach((c, i) => {
          const first = c.args[0]?.type;
          if (first === "bool" || first === "dot" || first === "nil" || first === "number" || first === "string") {
            this.#fail(`non executable command in pipeline stage ${i + 2}`);
          }
        });
        return { type: "pipe", pos: start.pos, isAssign, decl, cmds };
      }
      switch (t.kind) {
        case "bool":
        case "char":
        case "dot":
        case "field":
        case "identifier":
        case "number":
        case "nil":
        case "rawString":
        case "string":
        case "variable":
        case "leftParen":
          this.#i--;
          cmds.push(this.#command());
          break;
        default:
          this.#unexpected(t, context);
      }
    }
  }

  #command(): CommandNode {
    const pos = this.#peekNonSpace().pos;
    const args: ArgNode[] = [];
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand !== undefined) args.push(operand);
      const t = this.#next();
      if (t.kind === "space") continue;
      if (t.kind === "rightDelim" || t.kind === "rightParen") this.#i--;
      else if (t.kind !== "pipe") this.#unexpected(t, "operand");
      break;
    }
    if (args.length === 0) this.#fail("empty command");
    return { type: "command", pos, args };
  }

  #operand(): ArgNode | undefined {
    const node = this.#term();
    if (node === undefined) return undefined;
    if (this.#peek().kind !== "field") return node;
    const chainPos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().kind === "field") fields.push(this.#next().value.slice(1));
    switch (node.type) {
      case "field":
        return { type: "field", pos: chainPos, ident: [...node.ident, ...fields] };
      case "variable":
        return { type: "variable", pos: chainPos, ident: [...node.ident, ...fields] };
      case "bool":
      case "string":
      case "number":
      case "nil":
      case "dot":
        this.#fail(`unexpected . after term ${JSON.stringify(nodeString(node))}`);
        break;
    }
    return { type: "chain", pos: chainPos, node, field: fields };
  }

  #term(): ArgNode | undefined {
    const t = this.#nextNonSpace();
    switch (t.kind) {
      case "identifier":
        if (!BUILTIN_FUNCTIONS.has(t.value)) this.#fail(`function ${JSON.stringify(t.value)} not defined`);
        return { type: "identifier", pos: t.pos, name: t.value };
      case "dot":
        return { type: "dot", pos: t.pos };
      case "nil":
        return { type: "nil", pos: t.pos };
      case "variable":
        if (!this.#vars.includes(t.value)) this.#fail(`undefined variable ${JSON.stringify(t.value)}`);
        return { type: "variable", pos: t.pos, ident: [t.value] };
      case "field":
        return { type: "field", pos: t.pos, ident: [t.value.slice(1)] };
      case "bool":
        return { type: "bool", pos: t.pos, value: t.value === "true" };
      case "char":
      case "number":
        return this.#number(t);
      case "leftParen":
        return this.#nested("parenthesized pipeline", () => this.#pipeline("parenthesized pipeline", "rightParen"));
      case "string":
      case "rawString":
        return { type: "string", pos: t.pos, quoted: t.value, value: this.#unquote(t.value) };
    }
    this.#i--;
    return undefined;
  }

  #unquote(quoted: string): string {
    const value = unquoteGo(quoted);
    if (value === undefined) this.#fail("invalid syntax");
    return value;
  }

  #number(t: Token): NumberNode {
    const text = t.value;
    if (t.kind === "char") {
      const s = unquoteGo(`"${text.slice(1, -1).replace(/"/g, '\\"')}"`);
      const cps = s === undefined ? [] : [...s];
      if (cps.length !== 1) this.#fail(`malformed character constant: ${text}`);
      const code = (cps[0] as string).codePointAt(0) as number;
      return { type: "number", pos: t.pos, text, int: code, float: code, isFloat: false };
    }
    if (text.endsWith("i")) {
      throw new UnsupportedError(`template: complex constant ${text} is not supported`, { op: "state.render" });
    }
    const clean = text.replace(/_/g, "");
    const sign = clean.startsWith("-") ? -1 : 1;
    const body = clean.replace(/^[+-]/, "");
    let int: number | undefined;
    let float: number | undefined;
    if (/^0[xX][0-9a-fA-F]+$/.test(body)) int = sign * Number.parseInt(body.slice(2), 16);
    else if (/^0[bB][01]+$/.test(body)) int = sign * Number.parseInt(body.slice(2), 2);
    else if (/^0[oO]?[0-7]+$/.test(body)) int = sign * Number.parseInt(body.replace(/^0[oO]?/, ""), 8);
    else if (/^[0-9]+$/.test(body)) int = sign * Number(body);
    else if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(body)) float = sign * Number(body);
    else if (/^0[xX]/.test(body) && /[pP]/.test(body)) float = sign * hexFloat(body);
    if (int === undefined && float === undefined) this.#fail(`illegal number syntax: ${JSON.stringify(text)}`);
    if (int !== undefined) {
      if (!Number.isSafeInteger(int)) this.#fail(`illegal number syntax: ${JSON.stringify(text)}`);
      return { type: "number", pos: t.pos, text, int, float: int, isFloat: false };
    }
    const f = float as number;
    const isInt = Number.isSafeInteger(f);
    return { type: "number", pos: t.pos, text, int: isInt ? f : undefined, float: f, isFloat: true };
  }
}

function hexFloat(body: string): number {
  const [mant = "", exp = "0"] = body.slice(2).split(/[pP]/);
  const [whole = "", frac = ""] = mant.split(".");
  const value = Number.parseInt(whole || "0", 16) + (frac === "" ? 0 : Number.parseInt(frac, 16) / 16 ** frac.length);
  return value * 2 ** Number(exp);
}

/** How Go prints a token in "unexpected X" messages. */
function tokenString(t: Token): string {
  switch (t.kind) {
    case "eof":
      return "EOF";
    case "error":
      return t.value;
    case "keyword":
    case "dot":
    case "nil":
      return `<${t.value}>`;
  }
  const chars = [...t.value];
  return chars.length > 10 ? `${goQuote(chars.slice(0, 10).join(""))}...` : goQuote(t.value);
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}
