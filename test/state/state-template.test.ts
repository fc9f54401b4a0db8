import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TemplateError, UnsupportedError } from "../../src/errors.js";
import { executeGoTemplate } from "../../src/state/template-executor.js";
import { MAX_NESTING, parseGoTemplate } from "../../src/state/template-parser.js";
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
      // What Go's Execute had written before the error.
      expect((caught as TemplateError).output).toBe(c.out);
    });
  }
});

function goToolchain(): boolean {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// CI installs Debian's Go (.ci/run) and must run this; elsewhere it runs where Go is installed.
describe.runIf(goToolchain() || Boolean(process.env.CI))("the table against Go itself", () => {
  it("Go's text/template produces every output and error of the table", () => {
    const oracle = fileURLToPath(new URL("./fixtures/go-template-oracle", import.meta.url));
    const input = JSON.stringify(
      goTemplateCases.map(({ name, template, data, strings }) => ({ name, template, data, strings })),
    );
    const stdout = execFileSync("go", ["run", "."], {
      cwd: oracle,
      input,
      env: { ...process.env, GOFLAGS: "-mod=mod" },
    });
    const go = JSON.parse(stdout.toString()) as { name: string; out: string; error: string | null }[];
    expect(go.map((g) => [g.name, g.out, g.error ?? undefined])).toEqual(
      goTemplateCases.map((c) => [c.name, c.out, c.error]),
    );
  }, 120_000);
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

  it("nesting deeper than the JavaScript stack allows is an UnsupportedError naming the construct, not a stack overflow", () => {
    const parens = (n: number) => `{{${"(".repeat(n)}1${")".repeat(n)}}}`;
    const ifs = (n: number) => `${"{{if 1}}".repeat(n)}x${"{{end}}".repeat(n)}`;
    expect(run(parens(MAX_NESTING), null)).toBe("1");
    expect(run(ifs(MAX_NESTING), null)).toBe("x");
    expect(() => parseGoTemplate(parens(MAX_NESTING + 1), "t")).toThrow(UnsupportedError);
    expect(() => parseGoTemplate(parens(50_000), "t")).toThrow(
      `parenthesized pipeline nested more than ${MAX_NESTING} levels`,
    );
    expect(() => parseGoTemplate(ifs(50_000), "t")).toThrow(`if nested more than ${MAX_NESTING} levels`);
    const elseIfs = `{{if 0}}${"{{else if 0}}".repeat(MAX_NESTING + 1)}{{end}}`;
    expect(() => parseGoTemplate(elseIfs, "t")).toThrow(/if nested more than/);
    const blocks = `${'{{block "b" .}}'.repeat(MAX_NESTING + 1)}${"{{end}}".repeat(MAX_NESTING + 1)}`;
    expect(() => parseGoTemplate(blocks, "t")).toThrow(/block nested more than/);
    // Template recursion inside deeply nested actions runs out of JavaScript stack before Go's limits.
    const recursion = `{{define "r"}}${ifs(MAX_NESTING - 10).replace("x", '{{template "r" .}}')}{{end}}{{template "r" .}}`;
    let caught: unknown;
    try {
      run(recursion, null);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsupportedError);
    expect((caught as Error).message).toMatch(/^template: t: execution nested too deeply/);
  });

  it("Go features outside this implementation throw UnsupportedError naming them", () => {
    expect(() => parseGoTemplate("{{ 1i }}", "t")).toThrow(UnsupportedError);
    expect(() => parseGoTemplate("{{ 1i }}", "t")).toThrow(/complex constant 1i/);
    expect(() => run('{{ printf "%#v" . }}', { a: 1 })).toThrow(UnsupportedError);
    expect(() => run('{{ printf "%#v" . }}', { a: 1 })).toThrow(/%#v/);
  });
});
