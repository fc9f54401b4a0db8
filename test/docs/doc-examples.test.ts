import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import {
  type DocExample,
  docExamples,
  ExampleProgram,
  exampleModes,
  examplesOf,
  root,
  runnableSource,
} from "./doc-examples.js";

// Deliberately wrong examples, checked in the same program, show that the check notices a
// misspelt option, an export that does not exist and a missing method in a continued block
// (which reports its own errors only).
const wrong = examplesOf(
  "wrong.md",
  [
    "```ts",
    'import { openSqlite } from "storeroom/sql";',
    'import { NoSuchThing } from "storeroom/kv";',
    'const db = await openSqlite("./app.db", { backgroundCheckpiont: {} });',
    "```",
    "<!-- example: continues -->",
    "```ts",
    'await db.exec("SELECT 1");',
    "```",
  ].join("\n"),
);
const examples = docExamples();
const program = new ExampleProgram([...examples, ...wrong]);

function where(example: DocExample): string {
  return `${example.file}: the \`\`\`ts block at line ${example.line}`;
}

describe("the TypeScript examples of README.md and docs/*.md compile against the public API", () => {
  it("finds the examples and checks them against src/, not dist/", () => {
    expect(examples.length).toBeGreaterThanOrEqual(24);
    expect(new Set(examples.map((e) => e.file))).toContain("README.md");
    const loaded = program.program.getSourceFiles().map((f) => f.fileName);
    expect(loaded).toContain(join(root, "src", "sql", "index.ts").split("\\").join("/"));
    expect(loaded.filter((name) => name.startsWith(join(root, "dist").split("\\").join("/")))).toEqual([]);
  });

  it("notices an unknown export, a misspelt option and a missing method, at their Markdown lines", () => {
    const [first, continued] = wrong.map((e) => program.diagnostics(e).map((d) => `${d.where} ${d.message}`));
    expect(first).toEqual([
      expect.stringMatching(/^wrong\.md:3:10 TS2305: .*NoSuchThing/),
      expect.stringMatching(/^wrong\.md:4:43 TS2561: .*backgroundCheckpiont/),
    ]);
    expect(continued).toEqual([expect.stringMatching(/^wrong\.md:8:10 TS2339: Property 'exec' does not exist/)]);
  });

  it("every `<!-- example: ... -->` comment names a known mode, and `continues` has a block to go on from", () => {
    const problems = examples.flatMap((e) => {
      if (e.mode === undefined) return [];
      if (!exampleModes.includes(e.mode)) return [`${where(e)}: unknown mode "${e.mode}"`];
      if (e.mode === "continues" && e.continues === undefined) return [`${where(e)}: nothing above to continue`];
      if (e.mode === "assumes" && !e.preamble.some((l) => /^\s*declare\b/.test(l.text))) {
        return [`${where(e)}: "assumes" declares nothing`];
      }
      return [];
    });
    expect(problems).toEqual([]);
  });

  for (const example of examples) {
    it(where(example), () => {
      const errors = program.diagnostics(example).map((d) => `${d.where}: ${d.message}`);
      expect(errors).toEqual([]);
    });
  }
});

// The opening example of these pages needs only local files: each runs as written in a directory
// of its own (relative paths land there), as a separate process, and must print what it says.
const runs: { file: string; prints: string[] }[] = [
  { file: "README.md", prints: ["hello"] },
  { file: "docs/kv.md", prints: ["[ 'task:1=todo' ]"] },
  { file: "docs/state.md", prints: ["blue", "Colour: blue", "set colour"] },
  { file: "docs/objects.md", prints: ["docs/readme.txt 6"] },
  { file: "docs/keyv.md", prints: ["{ user: 'ada' }"] },
];

describe("the opening examples that need only local files run", () => {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-doc-examples-"));
  // Bare imports (`keyv`, `tsx`) resolve from the example's directory, as in a reader's project.
  const modules = join(dir, "node_modules");
  symlinkSync(join(root, "node_modules"), modules, "dir");
  afterAll(() => {
    unlinkSync(modules);
    rmSync(dir, { recursive: true, force: true });
  });
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OBJECTS;
  delete env.POSTGRES_URL;

  for (const { file, prints } of runs) {
    it(`${file}: its first example prints ${prints.join(", ")}`, async () => {
      const example = examples.find((e) => e.file === file);
      if (!example) throw new Error(`${file} has no example`);
      const cwd = join(dir, file.replace(/\W/g, "-"));
      mkdirSync(cwd);
      writeFileSync(join(cwd, "example.mts"), runnableSource(example));
      const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "example.mts"], {
        cwd,
        env,
        timeout: 30_000,
      });
      const lines = stdout.split("\n");
      for (const line of prints) expect(lines).toContain(line);
    });
  }
});
