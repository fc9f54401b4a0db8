import { InvalidArgumentError, UnsupportedError } from "../errors.js";

/** A parsed template: literal text and `.key` lookups, alternating. */
export interface ParsedTemplate {
  readonly parts: readonly (string | { readonly key: string })[];
}

const ACTION = /^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;

/**
 * Parses the Go `text/template` subset the seed's users write: `{{ .key }}` / `{{.key}}`,
 * `{{- .key -}}` trim markers and `{{/* comments *\/}}`. Malformed actions throw
 * {@link InvalidArgumentError} with the byte position; valid Go actions outside the subset
 * (pipelines, `if`, `range`, functions) throw {@link UnsupportedError} naming the action.
 */
export function parseTemplate(source: string): ParsedTemplate {
  if (typeof source !== "string") throw new InvalidArgumentError("template must be a string", { op: "state.render" });
  const parts: (string | { key: string })[] = [];
  let text = "";
  let pos = 0;
  while (pos < source.length) {
    const open = source.indexOf("{{", pos);
    if (open < 0) {
      text += source.slice(pos);
      break;
    }
    let chunk = source.slice(pos, open);
    const close = source.indexOf("}}", open + 2);
    if (close < 0) throw malformed(`unclosed action "{{" at position ${open}`);
    let inner = source.slice(open + 2, close);
    if (inner.startsWith("- ") || inner === "-") {
      chunk = chunk.trimEnd();
      inner = inner.slice(1);
    }
    let trimAfter = false;
    if (inner.endsWith(" -")) {
      trimAfter = true;
      inner = inner.slice(0, -1);
    }
    text += chunk;
    pos = close + 2;
    if (trimAfter) pos = skipSpace(source, pos);
    const comment = inner.trim();
    if (comment.startsWith("/*")) {
      if (!comment.endsWith("*/")) throw malformed(`unclosed comment at position ${open}`);
      continue;
    }
    const match = ACTION.exec(inner);
    if (match === null) {
      if (comment === "") throw malformed(`missing value for command at position ${open}`);
      if (/^\.[^\s]*$/.test(comment) && comment !== ".")
        throw malformed(`bad field name "${comment}" at position ${open}`);
      if (inner.includes("{{")) throw malformed(`unexpected "{{" in action at position ${open}`);
      throw new UnsupportedError(
        `template action "{{${inner}}}" at position ${open} is not supported; only {{ .key }} lookups are`,
        { op: "state.render" },
      );
    }
    if (text !== "") parts.push(text);
    text = "";
    parts.push({ key: match[1] as string });
  }
  if (text !== "") parts.push(text);
  return { parts };
}

/** Renders `template` with `data`; a missing key renders `<no value>` as in Go. */
export function executeTemplate(template: ParsedTemplate, data: ReadonlyMap<string, string>): string {
  let out = "";
  for (const part of template.parts) {
    out += typeof part === "string" ? part : (data.get(part.key) ?? "<no value>");
  }
  return out;
}

function skipSpace(source: string, pos: number): number {
  let p = pos;
  while (p < source.length && /\s/.test(source[p] as string)) p++;
  return p;
}

function malformed(message: string): InvalidArgumentError {
  return new InvalidArgumentError(`template: ${message}`, { op: "state.render" });
}
