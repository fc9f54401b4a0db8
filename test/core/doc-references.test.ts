import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const guides = ["ARCHITECTURE.md", "CONTRIBUTING.md"];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split("\\").join("/"));
}

const sources = filesUnder(join(root, "src")).filter((path) => path.endsWith(".ts"));
const sourceText = sources.map((path) => readFileSync(join(root, path), "utf8")).join("\n");
const docs = new Set([...filesUnder(join(root, "docs")), ...guides]);

/** Code spans of a Markdown file: what the guide names as a file or an identifier. */
function codeSpans(markdown: string): string[] {
  return [...markdown.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] as string);
}

describe("the architecture and contributing guides name what exists", () => {
  for (const guide of guides) {
    const spans = codeSpans(readFileSync(join(root, guide), "utf8"));

    it(`${guide}: every source file it names exists under src/`, () => {
      // Patterns such as `<engine>-errors.ts` or `s3-*.ts` describe files to write, not files.
      const named = spans.filter((s) => /^[\w./-]+\.ts$/.test(s));
      expect(named.length).toBeGreaterThan(5);
      const missing = named.filter((name) => !sources.some((path) => path === name || path.endsWith(`/${name}`)));
      expect(missing).toEqual([]);
    });

    it(`${guide}: every doc page it names exists`, () => {
      const named = spans.filter((s) => /^[\w./-]+\.md$/.test(s));
      expect(named.filter((name) => !docs.has(name))).toEqual([]);
    });

    it(`${guide}: every class, type or function it names in camelCase or PascalCase is in src/`, () => {
      // `X` stands for any name in the conventions (`openX`, `XOptions`).
      const identifiers = [...new Set(spans.flatMap((s) => s.match(/^[A-Za-z]\w*(?=(\(|$))/) ?? []))].filter(
        (id) => /[a-z][A-Z]|^[A-Z][a-z]+[A-Z]/.test(id) && !/X(?=[A-Z]|$)/.test(id),
      );
      expect(identifiers.length).toBeGreaterThan(10);
      expect(identifiers.filter((id) => !new RegExp(`\\b${id}\\b`).test(sourceText))).toEqual([]);
    });
  }
});
