import { describe, expect, it } from "vitest";
import { InvalidArgumentError, TemplateError, UnsupportedError } from "../../src/errors.js";
import { parseTemplate } from "../../src/state/index.js";
import { forEachEngine } from "./state-harness.js";

describe("render template parsing", () => {
  it("parses once and reports malformed templates with Go's message and line", () => {
    expect(parseTemplate("Hello {{ .name }}").root).toHaveLength(2);
    const cases: [string, string, number][] = [
      ["Hello {{ .name", "template: render:1: unclosed action", 1],
      ["a\nb {{ }}", "template: render:2: missing value for command", 2],
      ["{{ if .a }}\nyes", "template: render:2: unexpected EOF", 2],
      ["{{/* open }}", "template: render:1: unclosed comment", 1],
    ];
    for (const [tpl, message, line] of cases) {
      const err = (() => {
        try {
          parseTemplate(tpl);
        } catch (e) {
          return e;
        }
      })();
      expect(err, tpl).toBeInstanceOf(TemplateError);
      expect(err, tpl).toBeInstanceOf(InvalidArgumentError);
      expect((err as TemplateError).message).toBe(message);
      expect((err as TemplateError).line).toBe(line);
    }
  });

  it("Go constructs outside the implementation throw UnsupportedError naming them", () => {
    expect(() => parseTemplate("{{ 2i }}")).toThrow(UnsupportedError);
    expect(() => parseTemplate("{{ 2i }}")).toThrow(/complex constant 2i/);
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

  it("renders Go templates over the group: range in key order, conditions, functions", async () => {
    const s = await h.open();
    await s.set("cfg", "name", "web");
    await s.set("cfg", "replicas", "3");
    await s.set("cfg", "b-host", "b.example");
    await s.set("cfg", "a-host", "a.example");
    const tpl = [
      '{{ .name | printf "%-5s" }}|',
      '{{ range $k, $v := . }}{{ if ne $k "name" }}{{ $k }}={{ $v }};{{ end }}{{ end }}|',
      '{{ if eq .replicas "3" }}three{{ else }}other{{ end }}|',
      '{{ len . }} {{ index . "missing" | printf "%q" }} {{ .missing }}|',
      '{{ with .tls }}tls{{ else }}plain{{ end }}|{{ html "<&>" }} {{ urlquery .name "x y" }}',
    ].join("");
    expect(await s.render(tpl, "cfg")).toBe(
      'web  |a-host=a.example;b-host=b.example;replicas=3;|three|4 "" <no value>|plain|&lt;&amp;&gt; webx+y',
    );
    await expect(s.render("{{ index . 1 }}", "cfg")).rejects.toThrow(
      'template: render:1:3: executing "render" at <index . 1>: error calling index: value has type int; should be string',
    );
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
