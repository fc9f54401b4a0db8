import { InvalidArgumentError } from "../errors.js";
import { executeGoTemplate } from "./template-executor.js";
import { type ParsedTemplate, parseGoTemplate } from "./template-parser.js";
import { GoStringMap } from "./template-values.js";

export type { ParsedTemplate } from "./template-parser.js";

/** The name templates of `render` carry in error messages (`template: render:1: ...`). */
export const RENDER_TEMPLATE_NAME = "render";

/**
 * Parses a Go `text/template` source: actions, pipelines, variables, `if`/`else if`/`else`,
 * `range` (with `else`, `break`, `continue`), `with`, `define`/`template`/`block`, comments and
 * `{{- -}}` trim markers, and the builtin functions. A malformed template throws
 * {@link TemplateError} (an {@link InvalidArgumentError}) with Go's message and line; Go
 * features this implementation lacks (complex constants, `%#v`) throw {@link UnsupportedError}
 * naming them.
 */
export function parseTemplate(source: string): ParsedTemplate {
  if (typeof source !== "string") throw new InvalidArgumentError("template must be a string", { op: "state.render" });
  return parseGoTemplate(source, RENDER_TEMPLATE_NAME);
}

/**
 * Executes `template` with a group's entries as Go's `map[string]string`: `{{ .key }}` is the
 * value, a missing key prints `<no value>`, `range` visits keys in order, `index . "k"` is `""`
 * for a missing key.
 */
export function executeTemplate(template: ParsedTemplate, data: ReadonlyMap<string, string>): string {
  return executeGoTemplate(template, new GoStringMap(data));
}
