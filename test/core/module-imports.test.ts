import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const src = fileURLToPath(new URL("../../src", import.meta.url));
const modules = new Set(
  readdirSync(src).filter((name) => name !== "internal" && statSync(join(src, name)).isDirectory()),
);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

describe("module boundaries", () => {
  it("a module imports another module only through its index.ts", () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(src)) {
      const own = relative(src, file).split(sep)[0];
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/(?:from\s+|import\()\s*"(\.{1,2}\/[^"]+)"/g)) {
        const target = relative(src, resolve(dirname(file), match[1] as string)).split(sep);
        const module = target[0] as string;
        if (module === own || !modules.has(module)) continue; // same module, shared files, internal/
        if (target.length === 2 && target[1] === "index.js") continue;
        offenders.push(`${relative(src, file)} -> ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
