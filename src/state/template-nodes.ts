/** Nodes of a parsed template, as Go's `text/template/parse` builds them. `pos` is the source offset. */
export type TemplateNode = TextNode | ActionNode | IfNode | RangeNode | WithNode | TemplateCallNode | LoopControlNode;

export interface TextNode {
  readonly type: "text";
  readonly pos: number;
  readonly text: string;
}

export interface ActionNode {
  readonly type: "action";
  readonly pos: number;
  readonly pipe: PipeNode;
}

export interface BranchNode {
  readonly pos: number;
  readonly pipe: PipeNode;
  readonly list: readonly TemplateNode[];
  readonly elseList: readonly TemplateNode[] | undefined;
}

export interface IfNode extends BranchNode {
  readonly type: "if";
}

export interface RangeNode extends BranchNode {
  readonly type: "range";
}

export interface WithNode extends BranchNode {
  readonly type: "with";
}

export interface TemplateCallNode {
  readonly type: "template";
  readonly pos: number;
  readonly name: string;
  readonly pipe: PipeNode | undefined;
}

export interface LoopControlNode {
  readonly type: "break" | "continue";
  readonly pos: number;
}

/** A pipeline: optional variable declarations (or assignments) and commands joined by `|`. */
export interface PipeNode {
  readonly type: "pipe";
  readonly pos: number;
  readonly isAssign: boolean;
  readonly decl: readonly VariableNode[];
  readonly cmds: readonly CommandNode[];
}

export interface CommandNode {
  readonly type: "command";
  readonly pos: number;
  readonly args: readonly ArgNode[];
}

/** An operand of a command. */
export type ArgNode =
  | { readonly type: "identifier"; readonly pos: number; readonly name: string }
  | { readonly type: "dot"; readonly pos: number }
  | { readonly type: "nil"; readonly pos: number }
  | { readonly type: "bool"; readonly pos: number; readonly value: boolean }
  | { readonly type: "string"; readonly pos: number; readonly quoted: string; readonly value: string }
  | NumberNode
  | { readonly type: "field"; readonly pos: number; readonly ident: readonly string[] }
  | VariableNode
  | { readonly type: "chain"; readonly pos: number; readonly node: ArgNode; readonly field: readonly string[] }
  | PipeNode;

export interface VariableNode {
  readonly type: "variable";
  readonly pos: number;
  /** `["$x", "a", "b"]` for `$x.a.b`. */
  readonly ident: readonly string[];
}

export interface NumberNode {
  readonly type: "number";
  readonly pos: number;
  readonly text: string;
  /** The value as an int constant, when it is one. */
  readonly int: number | undefined;
  /** The value as a float constant, when it is one. */
  readonly float: number | undefined;
  /** Whether the constant reads as a float (`3.0`, `1e3`): it then evaluates to float64. */
  readonly isFloat: boolean;
}

/** How a node reads in Go's error messages (`<.a.b>`, `<index . 1>`). */
export function nodeString(n: ArgNode | CommandNode | TemplateNode): string {
  switch (n.type) {
    case "identifier":
      return n.name;
    case "dot":
      return ".";
    case "nil":
      return "nil";
    case "bool":
      return String(n.value);
    case "string":
      return n.quoted;
    case "number":
      return n.text;
    case "field":
      return n.ident.map((f) => `.${f}`).join("");
    case "variable":
      return n.ident.join(".");
    case "chain":
      return `${n.node.type === "pipe" ? `(${nodeString(n.node)})` : nodeString(n.node)}${n.field.map((f) => `.${f}`).join("")}`;
    case "pipe": {
      const decl = n.decl.length > 0 ? `${n.decl.map(nodeString).join(", ")} ${n.isAssign ? "=" : ":="} ` : "";
      return decl + n.cmds.map(nodeString).join(" | ");
    }
    case "command":
      return n.args.map((a) => (a.type === "pipe" ? `(${nodeString(a)})` : nodeString(a))).join(" ");
    case "text":
      return n.text;
    case "action":
      return `{{${nodeString(n.pipe)}}}`;
    case "if":
    case "range":
    case "with":
      return `{{${n.type} ${nodeString(n.pipe)}}}`;
    case "template":
      return n.pipe === undefined
        ? `{{template ${JSON.stringify(n.name)}}}`
        : `{{template ${JSON.stringify(n.name)} ${nodeString(n.pipe)}}}`;
    case "break":
    case "continue":
      return `{{${n.type}}}`;
  }
}
