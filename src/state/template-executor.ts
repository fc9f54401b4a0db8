import { TemplateError, UnsupportedError } from "../errors.js";
import { goSprint } from "./go-format.js";
import { ARITY, BUILTINS, CallError } from "./template-functions.js";
import {
  type ArgNode,
  type BranchNode,
  type CommandNode,
  type NumberNode,
  nodeString,
  type PipeNode,
  type TemplateNode,
} from "./template-nodes.js";
import type { ParsedTemplate } from "./template-parser.js";
import {
  GoFloat,
  GoStringMap,
  isTrue,
  kindOf,
  mapEntries,
  mapGet,
  NO_VALUE,
  numberOf,
  sliceItems,
  sortedKeys,
  typeName,
} from "./template-values.js";

/**
 * Nested `{{template}}` calls allowed. Go allows 100000; a JavaScript stack does not, so
 * runaway recursion stops here with Go's message.
 */
const MAX_DEPTH = 1000;
/** Marks "no value piped in" (Go's `missingVal`), distinct from a piped-in invalid value. */
const NO_FINAL: unique symbol = Symbol("no final");

class LoopSignal {
  constructor(readonly kind: "break" | "continue") {}
}

interface Variable {
  readonly name: string;
  value: unknown;
}

/**
 * Executes a parsed template against `data` as Go's `text/template` does (missing map keys
 * print `<no value>`). Throws {@link TemplateError} with Go's
 * `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...` message.
 */
export function executeGoTemplate(template: ParsedTemplate, data: unknown): string {
  const out: string[] = [];
  const dot = data === null || data === undefined ? NO_VALUE : data;
  const state = new ExecState(template, template.name, [{ name: "$", value: dot }], out, 0);
  try {
    state.walkList(dot, template.root);
  } catch (err) {
    if (err instanceof TemplateError) {
      throw new TemplateError(err.message, err.line, err.column, { op: err.op }, out.join(""));
    }
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      // Go's goroutine stacks grow where a JavaScript stack ends: fail typed instead of with a RangeError.
      throw new UnsupportedError(
        `template: ${template.name}: execution nested too deeply for this implementation ({{template}} calls within nested actions)`,
        { op: "state.render", cause: err },
      );
    }
    throw err;
  }
  return out.join("");
}

class ExecState {
  readonly #t: ParsedTemplate;
  readonly #name: string;
  readonly #vars: Variable[];
  readonly #out: string[];
  readonly #depth: number;

  constructor(t: ParsedTemplate, name: string, vars: Variable[], out: string[], depth: number) {
    this.#t = t;
    this.#name = name;
    this.#vars = vars;
    this.#out = out;
    this.#depth = depth;
  }

  walkList(dot: unknown, list: readonly TemplateNode[]): void {
    for (const n of list) this.#walk(dot, n);
  }

  #walk(dot: unknown, node: TemplateNode): void {
    switch (node.type) {
      case "text":
        this.#out.push(node.text);
        return;
      case "action": {
        // Declared variables stay in scope until the end of the enclosing control structure.
        const value = this.#evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.#out.push(printValue(value));
        return;
      }
      case "if":
      case "with":
        this.#walkIfOrWith(dot, node);
        return;
      case "range":
        this.#walkRange(dot, node);
        return;
      case "template":
        this.#walkTemplate(dot, node);
        return;
      case "break":
      case "continue":
        throw new LoopSignal(node.type);
    }
  }

  #walkIfOrWith(dot: unknown, node: BranchNode & { type: "if" | "with" }): void {
    const mark = this.#vars.length;
    try {
      const value = this.#evalPipeline(dot, node.pipe);
      if (isTrue(value)) {
        this.walkList(node.type === "with" ? value : dot, node.list);
      } else if (node.elseList !== undefined) {
        this.walkList(dot, node.elseList);
      }
    } finally {
      this.#vars.length = mark;
    }
  }

  #walkRange(dot: unknown, node: BranchNode & { type: "range" }): void {
    const mark = this.#vars.length;
    try {
      const value = this.#evalPipeline(dot, node.pipe);
      const mark2 = this.#vars.length;
      const iteration = (index: unknown, elem: unknown): boolean => {
        const decl = node.pipe.decl.length;
        if (decl > 0) this.#setTopVar(1, elem);
        if (decl > 1) this.#setTopVar(2, index);
        try {
          this.walkList(elem, node.list);
        } catch (signal) {
          if (!(signal instanceof LoopSignal)) throw signal;
          if (signal.kind === "break") return false;
        } finally {
          this.#vars.length = mark2;
        }
        return true;
      };
      let iterated = false;
      switch (kindOf(value)) {
        case "slice":
          sliceItems(value).every((e, i) => {
            iterated = true;
            return iteration(i, e);
          });
          break;
        case "map": {
          const entries = mapEntries(value);
          for (const k of sortedKeys(value)) {
            iterated = true;
            if (!iteration(k, entries.get(k))) break;
          }
          break;
        }
        case "int": {
          const n = numberOf(value);
          for (let i = 0; i < n; i++) {
            iterated = true;
            if (!iteration(i, i)) break;
          }
          break;
        }
        case "invalid":
        case "nil":
          break;
        default:
          this.#fail(node.pipe, `range can't iterate over ${goSprint([value])}`);
      }
      if (!iterated && node.elseList !== undefined) this.walkList(dot, node.elseList);
    } finally {
      this.#vars.length = mark;
    }
  }

  #walkTemplate(dot: unknown, node: TemplateNode & { type: "template" }): void {
    const body = this.#t.templates.get(node.name);
    if (body === undefined) this.#fail(node, `template ${JSON.stringify(node.name)} not defined`);
    if (this.#depth + 1 >= MAX_DEPTH) this.#fail(node, `exceeded maximum template depth (${MAX_DEPTH})`);
    const newDot = node.pipe === undefined ? NO_VALUE : this.#evalPipeline(dot, node.pipe);
    new ExecState(this.#t, node.name, [{ name: "$", value: newDot }], this.#out, this.#depth + 1).walkList(
      newDot,
      body,
    );
  }

  #setTopVar(n: number, value: unknown): void {
    (this.#vars[this.#vars.length - n] as Variable).value = value;
  }

  #varValue(node: ArgNode, name: string): unknown {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      const v = this.#vars[i] as Variable;
      if (v.name === name) return v.value;
    }
    this.#fail(node, `undefined variable: ${name}`);
  }

  #evalPipeline(dot: unknown, pipe: PipeNode): unknown {
    let value: unknown = NO_FINAL;
    for (const cmd of pipe.cmds) {
      value = this.#evalCommand(dot, cmd, value);
      // As in Go, a nil interface coming out of a command (a nil map value, a missing index) is no value.
      if (value === null || value === undefined) value = NO_VALUE;
    }
    for (const v of pipe.decl) {
      const name = v.ident[0] as string;
      if (pipe.isAssign) {
        let found = false;
        for (let i = this.#vars.length - 1; i >= 0; i--) {
          const slot = this.#vars[i] as Variable;
          if (slot.name === name) {
            slot.value = value;
            found = true;
            break;
          }
        }
        if (!found) this.#fail(v, `undefined variable: ${name}`);
      } else {
        this.#vars.push({ name, value });
      }
    }
    return value;
  }

  #notAFunction(args: readonly ArgNode[], final: unknown, node: ArgNode): void {
    if (args.length > 1 || final !== NO_FINAL)
      this.#fail(node, `can't give argument to non-function ${nodeString(args[0] as ArgNode)}`);
  }

  #evalCommand(dot: unknown, cmd: CommandNode, final: unknown): unknown {
    const first = cmd.args[0] as ArgNode;
    switch (first.type) {
      case "field":
        return this.#evalFieldChain(dot, first, first.ident, cmd.args, final);
      case "chain": {
        const base = first.node.type === "pipe" ? this.#evalPipeline(dot, first.node) : this.#evalArg(dot, first.node);
        return this.#evalFieldChain(base, first, first.field, cmd.args, final);
      }
      case "identifier":
        return this.#evalFunction(dot, first.name, first, cmd, cmd.args, final);
      case "pipe":
        this.#notAFunction(cmd.args, final, first);
        return this.#evalPipeline(dot, first);
      case "variable": {
        const value = this.#varValue(first, first.ident[0] as string);
        if (first.ident.length === 1) {
          this.#notAFunction(cmd.args, final, first);
          return value;
        }
        return this.#evalFieldChain(value, first, first.ident.slice(1), cmd.args, final);
      }
    }
    this.#notAFunction(cmd.args, final, first);
    switch (first.type) {
      case "bool":
        return first.value;
      case "dot":
        return dot;
      case "nil":
        this.#fail(first, "nil is not a command");
        break;
      case "number":
        return this.#constant(first);
      case "string":
        return first.value;
    }
    return NO_VALUE;
  }

  #constant(n: NumberNode): unknown {
    if (n.isFloat && !/^[+-]?0[xX]/.test(n.text) && !n.text.startsWith("'")) {
      const f = n.float as number;
      return Number.isInteger(f) ? new GoFloat(f) : f;
    }
    if (n.int === undefined) this.#fail(n, `${n.text} overflows int`);
    return n.int;
  }

  #evalFieldChain(
    receiver: unknown,
    node: ArgNode,
    ident: readonly string[],
    args: readonly ArgNode[],
    final: unknown,
  ): unknown {
    let r = receiver;
    // Values read out of a map[string]interface{} have the static type interface {} in Go's messages.
    let viaInterface = false;
    for (let i = 0; i < ident.length - 1; i++) {
      const next = this.#evalField(ident[i] as string, node, [], NO_FINAL, r, viaInterface);
      viaInterface = kindOf(r) === "map" && !(r instanceof GoStringMap);
      r = next;
    }
    return this.#evalField(ident[ident.length - 1] as string, node, args, final, r, viaInterface);
  }

  #evalField(
    name: string,
    node: ArgNode,
    args: readonly ArgNode[],
    final: unknown,
    receiver: unknown,
    viaInterface: boolean,
  ): unknown {
    const kind = kindOf(receiver);
    if (kind === "invalid") return NO_VALUE;
    if (kind === "nil") this.#fail(node, `nil pointer evaluating interface {}.${name}`);
    if (kind === "map") {
      if (args.length > 1 || final !== NO_FINAL) this.#fail(node, `${name} is not a method but has arguments`);
      return mapGet(receiver, name);
    }
    this.#fail(node, `can't evaluate field ${name} in type ${viaInterface ? "interface {}" : typeName(receiver)}`);
  }

  #evalFunction(
    dot: unknown,
    name: string,
    node: ArgNode,
    cmd: ArgNode | CommandNode,
    args: readonly ArgNode[],
    final: unknown,
  ): unknown {
    const rest = args.slice(1);
    const count = rest.length + (final === NO_FINAL ? 0 : 1);
    const arity = ARITY.get(name);
    if (arity !== undefined) {
      const [want, variadic] = arity;
      if (variadic ? count < want : count !== want) {
        this.#fail(node, `wrong number of args for ${name}: want ${variadic ? "at least " : ""}${want} got ${count}`);
      }
    }
    if (name === "and" || name === "or") {
      const values = (function* (self: ExecState) {
        for (const a of rest) yield self.#evalArg(dot, a);
        if (final !== NO_FINAL) yield final;
      })(this);
      let last: unknown;
      for (const v of values) {
        last = v;
        if (isTrue(v) === (name === "or")) return v;
      }
      return last;
    }
    const values = rest.map((a) => this.#evalArg(dot, a));
    if (final !== NO_FINAL) values.push(final);
    const fn = BUILTINS.get(name);
    if (fn === undefined) this.#fail(node, `${JSON.stringify(name)} is not a defined function`);
    try {
      return fn(values);
    } catch (err) {
      if (err instanceof CallError) this.#fail(cmd, `error calling ${name}: ${err.message}`);
      throw err;
    }
  }

  #evalArg(dot: unknown, n: ArgNode): unknown {
    switch (n.type) {
      case "dot":
        return dot;
      case "nil":
        return null;
      case "field":
        return this.#evalFieldChain(dot, n, n.ident, [n], NO_FINAL);
      case "variable": {
        const value = this.#varValue(n, n.ident[0] as string);
        return n.ident.length === 1 ? value : this.#evalFieldChain(value, n, n.ident.slice(1), [n], NO_FINAL);
      }
      case "pipe":
        return this.#evalPipeline(dot, n);
      case "identifier":
        return this.#evalFunction(dot, n.name, n, n, [n], NO_FINAL);
      case "chain": {
        const base = n.node.type === "pipe" ? this.#evalPipeline(dot, n.node) : this.#evalArg(dot, n.node);
        return this.#evalFieldChain(base, n, n.field, [n], NO_FINAL);
      }
      case "bool":
        return n.value;
      case "string":
        return n.value;
      case "number":
        return this.#constant(n);
    }
  }

  #fail(node: { readonly pos: number } & (ArgNode | TemplateNode | CommandNode | PipeNode), message: string): never {
    const before = this.#t.source.slice(0, node.pos);
    const nl = before.lastIndexOf("\n");
    const line = before.split("\n").length;
    const column = Buffer.byteLength(nl < 0 ? before : before.slice(nl + 1), "utf8");
    const context = nodeString(node as ArgNode);
    throw new TemplateError(
      `template: ${this.#t.name}:${line}:${column}: executing ${JSON.stringify(this.#name)} at <${context}>: ${message}`,
      line,
      column,
      { op: "state.render" },
    );
  }
}

/** Go's `printValue`: an invalid value prints `<no value>`, anything else as `fmt.Sprint`. */
function printValue(value: unknown): string {
  if (value === NO_VALUE || value === NO_FINAL) return "<no value>";
  return goSprint([value]);
}
