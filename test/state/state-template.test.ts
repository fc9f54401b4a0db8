import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TemplateError, UnsupportedError } from "../../src/errors.js";
import { executeGoTemplate } from "../../src/state/template-executor.js";
import { parseGoTemplate } from "../../src/state/template-parser.js";
import { GoStringMap } from "../../src/state/template-values.js";
import { goTemplateCases } from "./go-template-cases.js";

function run(template: string, data: unknown, strings = false): string {
  const parsed = parseGoTemplate(template, "t");
  const input = strings ? new GoStringMap(new Map(Object.entries(data as Record<string, string>))) : data;
  return executeGoTemplate(parsed, input);
}

describe("Go text/template behaviour table", () => {
  it("has at least 80 cases", () => {
    expect(goTemplateCases.length).toBeGreaterThanOrEqual(80);
  });

  for (const c of goTemplateCases) {
    it(c.name, () => {
      if (c.error === undefined) {
        expect(run(c.template, c.data, c.strings)).toBe(c.out);
        return;
      }
      let caught: unknown;
      try {
        run(c.template, c.data, c.strings);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(TemplateError);
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      expect((caught as Error).message).toBe(c.error);
    });
  }
});

describe("template errors", () => {
  it("parse errors carry Go's line; execution errors line and column", () => {
    const parse = (() => {
      try {
        parseGoTemplate("a\nb\n{{ if }}", "t");
      } catch (err) {
        return err as TemplateError;
      }
    })();
    expect(parse?.message).toBe("template: t:3: missing value for if");
    expect(parse?.line).toBe(3);
    const exec = (() => {
      try {
        run("x\n  {{ len 3 }}", null);
      } catch (err) {
        return err as TemplateError;
      }
    })();
    expect(exec?.line).toBe(2);
    expect(exec?.column).toBe(5);
  });

  it("Go features outside this implementation throw UnsupportedError naming them", () => {
    expect(() => parseGoTemplate("{{ 1i }}", "t")).toThrow(UnsupportedError);
    expect(() => parseGoTemplate("{{ 1i }}", "t")).toThrow(/complex constant 1i/);
    expect(() => run('{{ printf "%#v" . }}', { a: 1 })).toThrow(UnsupportedError);
    expect(() => run('{{ printf "%#v" . }}', { a: 1 })).toThrow(/%#v/);
  });
});
