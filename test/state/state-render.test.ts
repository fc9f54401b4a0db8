import { describe, expect, it } from "vitest";
import { InvalidArgumentError, UnsupportedError } from "../../src/errors.js";
import { parseTemplate } from "../../src/state/index.js";
import { forEachEngine } from "./state-harness.js";

describe("render template parsing (Go text/template subset)", () => {
  it("parses {{ .key }} and {{.key}} lookups between literal text", () => {
    expect(parseTemplate("Hello {{ .name }}, {{.greeting}}!").parts).toEqual([
      "Hello ",
      { key: "name" },
      ", ",
      { key: "greeting" },
      "!",
    ]);
  });

  it("supports trim markers and comments", () => {
    expect(parseTemplate("a  {{- .x -}}  b{{/* note */}}c").parts).toEqual(["a", { key: "x" }, "bc"]);
  });

  it("a malformed template throws InvalidArgumentError with the position", () => {
    const cases: [string, RegExp][] = [
      ["Hello {{ .name", /unclosed action "\{\{" at position 6/],
      ["x {{ }}", /missing value for command at position 2/],
      ["{{ .a.b.c- }}", /bad field name/],
      ["{{/* open }}", /unclosed comment at position 0/],
    ];
    for (const [tpl, message] of cases) {
      const err = (() => {
        try {
          parseTemplate(tpl);
        } catch (e) {
          return e;
        }
      })();
      expect(err, tpl).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it("valid Go actions outside the subset throw UnsupportedError naming the action", () => {
    expect(() => parseTemplate("{{ if .a }}x{{ end }}")).toThrow(UnsupportedError);
    expect(() => parseTemplate("{{ .a | printf }}")).toThrow(
      /"\{\{ \.a \| printf \}\}" at position 0 is not supported/,
    );
  });

  it("text without actions is returned as is, including lone braces", () => {
    expect(parseTemplate("plain } text }} {").parts).toEqual(["plain } text }} {"]);
    expect(parseTemplate("").parts).toEqual([]);
  });
});

forEachEngine("StateStore.render", (h) => {
  it("renders the group's live entries; missing keys render <no value>", async () => {
    const s = await h.open();
    await s.set("user", "name", "Ada");
    await s.set("user", "lang", "en");
    expect(await s.render("Hello {{ .name }} ({{.lang}}) {{ .missing }}", "user")).toBe("Hello Ada (en) <no value>");
    expect(await s.render("{{ .name }}", "empty-group")).toBe("<no value>");
  });

  it("values are inserted verbatim (no HTML escaping, as text/template)", async () => {
    const s = await h.open();
    await s.set("g", "v", "<b>&\"'</b> {{ .v }}");
    expect(await s.render("[{{ .v }}]", "g")).toBe("[<b>&\"'</b> {{ .v }}]");
  });

  it("a malformed template fails before reading, with a typed error", async () => {
    const s = await h.open();
    await expect(s.render("{{ .oops", "g")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.render(42 as unknown as string, "g")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("renders 50 keys", async () => {
    const s = await h.open();
    await s.transaction(async (tx) => {
      for (let i = 0; i < 50; i++) await tx.set("tpl", `k${i}`, `v${i}`);
    });
    const tpl = Array.from({ length: 50 }, (_, i) => `{{ .k${i} }}`).join(",");
    expect(await s.render(tpl, "tpl")).toBe(Array.from({ length: 50 }, (_, i) => `v${i}`).join(","));
  });
});
