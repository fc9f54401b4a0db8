import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

/** The repository root. */
export const root = join(import.meta.dirname, "..", "..");

/** One line of an example's checked text and the Markdown line it came from. */
interface SourceLine {
  text: string;
  /** 1-based line in the Markdown file. */
  line: number;
}

/**
 * One fenced ```ts block of README.md or docs/*.md.
 *
 * An HTML comment `<!-- example: <mode> ... -->` ending on the line just above the fence says how
 * the block is checked when it is not complete on its own; the comment is visible in the doc
 * source, next to the block it excuses:
 * - `continues`: the block goes on from the nearest complete block above it in the same file and
 *   is checked after that block's code (it uses the names that block defines).
 * - `assumes`: the block uses names of the reader's own program; the comment's further lines
 *   declare them in TypeScript (`declare const server: import("node:http").Server;`) with a
 *   `//` comment saying why.
 * Further lines of a `continues` comment are declarations too.
 */
export interface DocExample {
  /** The Markdown file, relative to the root (`docs/state.md`). */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The block's code, without the fences. */
  code: string;
  /** The mode of its `<!-- example: ... -->` comment, if it has one. */
  mode?: string;
  /** For `continues`: the line of the block it goes on from. */
  continues?: number;
  /** The lines checked before the block's own code: the continued block, then declarations. */
  preamble: SourceLine[];
  /** How many lines of the preamble are the continued block's (its own test reports their errors). */
  inherited: number;
  /** The block's own lines. */
  body: SourceLine[];
}

/** The example modes this file understands. */
export const exampleModes = ["continues", "assumes"];

/** README.md and every docs/*.md, relative to the root. */
export function docFiles(): string[] {
  const docs = readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs];
}

/** The ```ts and ```typescript blocks of one Markdown file, in order. */
export function examplesOf(file: string, markdown: string): DocExample[] {
  const lines = markdown.split("\n");
  const examples: DocExample[] = [];
  let base: DocExample | undefined;
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([\w-]*)/.exec(lines[i] as string);
    if (!open) continue;
    const [, indent = "", fence = "", lang = ""] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end] as string).trimStart().startsWith(fence)) end++;
    if (lang === "ts" || lang === "typescript") {
      const body = lines
        .slice(i + 1, end)
        .map((text, k) => ({ text: text.startsWith(indent) ? text.slice(indent.length) : text, line: i + 2 + k }));
      const marker = markerAbove(lines, i);
      const continued = marker?.mode === "continues" ? base : undefined;
      const inherited = continued ? [...continued.preamble, ...continued.body] : [];
      const example: DocExample = {
        file,
        line: i + 1,
        code: body.map((l) => l.text).join("\n"),
        preamble: [...inherited, ...(marker?.declarations ?? [])],
        inherited: inherited.length,
        body,
        ...(marker ? { mode: marker.mode } : {}),
        ...(continued ? { continues: continued.line } : {}),
      };
      examples.push(example);
      if (marker?.mode !== "continues") base = example;
    }
    i = end;
  }
  return examples;
}

/** The `<!-- example: ... -->` comment ending on the line above line `fenceIndex`, if any. */
function markerAbove(lines: string[], fenceIndex: number): { mode: string; declarations: SourceLine[] } | undefined {
  const last = fenceIndex - 1;
  if (last < 0 || !(lines[last] as string).trimEnd().endsWith("-->")) return undefined;
  let first = last;
  while (first >= 0 && !(lines[first] as string).includes("<!--")) first--;
  const opening = /<!--\s*example:\s*([\w-]+)\s*(.*)$/.exec(lines[first] ?? "");
  if (!opening) return undefined;
  const [, mode = "", rest = ""] = opening;
  const declarations: SourceLine[] = [];
  if (first === last) {
    const inline = rest.replace(/-->\s*$/, "").trim();
    if (inline) declarations.push({ text: inline, line: first + 1 });
    return { mode, declarations };
  }
  if (rest.trim()) declarations.push({ text: rest, line: first + 1 });
  for (let k = first + 1; k < last; k++) declarations.push({ text: lines[k] as string, line: k + 1 });
  const closing = (lines[last] as string).replace(/-->\s*$/, "");
  if (closing.trim()) declarations.push({ text: closing, line: last + 1 });
  return { mode, declarations };
}

/** Every example of README.md and docs/*.md. */
export function docExamples(): DocExample[] {
  return docFiles().flatMap((file) => examplesOf(file, readFileSync(join(root, file), "utf8")));
}

/** A compiler diagnostic placed in the Markdown source. */
export interface ExampleDiagnostic {
  /** `docs/state.md:101`, or the virtual file's name when it falls outside any Markdown line. */
  where: string;
  /** `TS2304: Cannot find name 'a'.` */
  message: string;
}

/** One TypeScript program holding every example as its own module, checked against `src/`. */
export class ExampleProgram {
  readonly program: ts.Program;
  readonly #files = new Map<string, { example: DocExample; lines: SourceLine[] }>();

  constructor(examples: DocExample[]) {
    const virtual = new Map<string, string>();
    for (const example of examples) {
      const name = join(root, "docs", "examples", `${example.file.replace(/\W/g, "-")}-${example.line}.mts`);
      const lines = [...example.preamble, ...example.body];
      // `export {}` keeps a block without imports a module; it is the last line, mapped to none.
      virtual.set(name, `${lines.map((l) => l.text).join("\n")}\nexport {};\n`);
      this.#files.set(name, { example, lines });
    }
    const options = {
      ...compilerOptions(),
      noEmit: true,
      moduleDetection: ts.ModuleDetectionKind.Force,
      paths: packagePaths(),
    };
    const host = ts.createCompilerHost(options, true);
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
    host.readFile = (name) => virtual.get(name) ?? readFile.call(host, name);
    host.getSourceFile = (name, language, onError, create) => {
      const text = virtual.get(name);
      return text === undefined
        ? getSourceFile.call(host, name, language, onError, create)
        : ts.createSourceFile(name, text, language, true);
    };
    this.program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  }

  /** The example's syntax and type errors, each placed at its Markdown line. */
  diagnostics(example: DocExample): ExampleDiagnostic[] {
    const entry = [...this.#files].find(([, f]) => f.example === example);
    if (!entry) throw new Error(`${example.file}:${example.line} is not part of this program`);
    const [name, { lines }] = entry;
    const source = this.program.getSourceFile(name);
    if (!source) throw new Error(`${name} did not load`);
    const all = [...this.program.getSyntacticDiagnostics(source), ...this.program.getSemanticDiagnostics(source)];
    return all.flatMap((d) => {
      const message = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
      if (d.start === undefined) return [{ where: name, message }];
      const at = source.getLineAndCharacterOfPosition(d.start);
      if (at.line < example.inherited) return [];
      const origin = lines[at.line];
      return [{ where: origin ? `${example.file}:${origin.line}:${at.character + 1}` : name, message }];
    });
  }
}

/** The compiler options of tsconfig.json. */
function compilerOptions(): ts.CompilerOptions {
  const path = join(root, "tsconfig.json");
  const config = ts.readConfigFile(path, ts.sys.readFile);
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root, undefined, path).options;
}

/** `storeroom` and each `storeroom/<module>` of package.json "exports", mapped to its source entry point. */
export function packagePaths(): Record<string, string[]> {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    exports: Record<string, { types?: string } | string>;
  };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === "string" || !target.types) continue;
    const source = target.types.replace(/^\.\/dist\//, "src/").replace(/\.d\.ts$/, ".ts");
    paths[`storeroom${subpath.slice(1)}`] = [join(root, source)];
  }
  return paths;
}

/**
 * The example's own code as a module that runs outside the repository: `storeroom` imports point
 * at the source entry points (file URLs), everything else is left as written.
 */
export function runnableSource(example: DocExample): string {
  const paths = packagePaths();
  return example.code.replace(/(from\s+)"(storeroom(?:\/[\w-]+)?)"/g, (whole, from: string, specifier: string) => {
    const target = paths[specifier]?.[0];
    return target ? `${from}"${pathToFileURL(target).href}"` : whole;
  });
}
