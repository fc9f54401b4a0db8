import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "results" || e.name === "fixtures" ? [] : files(path);
    return /\.(ts|md)$/.test(e.name) ? [path] : [];
  });
}

// Built from parts so this file does not match itself.
const citation = new RegExp(
  ["se", "eds? ?0*[0-9]{1,3}|se", "ed-systems|sect", "ion [0-9]|the se", "ed's"].join(""),
  "i",
);

describe("product text speaks of the product", () => {
  it("no code, test, doc or benchmark cites material outside the repository", () => {
    const offenders = [
      ...files("src"),
      ...files("test"),
      ...files("docs"),
      ...files("bench"),
      "README.md",
      "CONTRIBUTING.md",
      "BENCHMARKS.md",
    ].flatMap((file) =>
      readFileSync(join(root, file), "utf8")
        .split("\n")
        .flatMap((line, i) =>
          citation.test(line) ? [`${relative(root, join(root, file))}:${i + 1}: ${line.trim()}`] : [],
        ),
    );
    expect(offenders).toEqual([]);
  });
});
