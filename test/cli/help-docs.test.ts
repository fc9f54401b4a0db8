import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Command, CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { allCommands, buildProgram } from "../../src/cli/program.js";

const docs = readFileSync(fileURLToPath(new URL("../../docs/cli.md", import.meta.url)), "utf8");

/** The synopsis lines of a command in docs/cli.md: lines that start with `storeroom <path>`. */
function synopsisOf(path: string): string {
  const start = `storeroom ${path}`;
  return docs
    .split("\n")
    .map((line) => line.replace(/^[`\s]+/, ""))
    .filter((line) => line.startsWith(start) && /^($|[\s`])/.test(line.slice(start.length)))
    .join("\n");
}

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function helpOf(cmd: Command): string {
  let help = "";
  cmd.configureOutput({ writeOut: (s) => (help += s) });
  cmd.outputHelp();
  return help;
}

/** The example command lines of a help text: `storeroom ...` lines (backslash continuations joined, env prefixes dropped). */
function examplesOf(help: string): string[] {
  const section = help.split(/\nExamples?:\n/)[1]?.split(/\n\s*\n/)[0] ?? "";
  return section
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .map((line) =>
      line
        .trim()
        .replace(/\s+#\s.*$/, "")
        .replace(/^([A-Z_]+=\S+\s+)+/, ""),
    )
    .filter((line) => line.startsWith("storeroom "));
}

/** Splits a shell command line into words (single and double quotes, no expansion). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = pattern.exec(line); m !== null; m = pattern.exec(line)) {
    words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? m[3] ?? ""));
  }
  return words;
}

/** A program whose actions do nothing and whose usage errors throw, to check that examples parse. */
function dryProgram(): Command {
  const program = buildProgram();
  for (const cmd of allCommands(program)) {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    if ((cmd as unknown as { _actionHandler: unknown })._actionHandler !== null) cmd.action(() => {});
  }
  return program;
}

const commands = allCommands(buildProgram());

describe("every command's --help against docs/cli.md", () => {
  it.each(commands.map((c) => [pathOf(c) || "storeroom", c] as const))("%s", async (path, cmd) => {
    const help = helpOf(cmd);
    const examples = examplesOf(help);
    expect(examples.length, `${path}: an Example line`).toBeGreaterThan(0);
    const exitLine = /\nExit codes: ([^\n]+)/.exec(help)?.[1];
    expect(exitLine, `${path}: an Exit codes line`).toBeDefined();
    for (const code of exitLine?.match(/\b\d+\b(?= )/g) ?? []) expect(["0", "1", "2"]).toContain(code);
    if (cmd.parent !== null && cmd.commands.length === 0) {
      const synopsis = synopsisOf(path);
      expect(synopsis, `docs/cli.md has a "storeroom ${path} ..." line`).not.toBe("");
      for (const option of cmd.options) {
        if (option.long !== undefined) expect(synopsis, `${path} ${option.long} is documented`).toContain(option.long);
      }
    } else if (cmd.parent !== null) {
      expect(docs, `a docs/cli.md heading names ${path}`).toMatch(new RegExp(`^## .*\\b${path}\\b`, "m"));
    }
    for (const example of examples) {
      const words = shellWords(example).slice(1);
      let error: unknown;
      try {
        await dryProgram().parseAsync(words, { from: "user" });
      } catch (err) {
        error = err;
      }
      if (error instanceof CommanderError && error.exitCode === 0) error = undefined; // --help / --version
      expect(error, `${path}: example "${example}" parses`).toBeUndefined();
    }
  });

  it("the example check catches a line that does not parse", async () => {
    for (const words of [
      ["state", "get", "g", "k", "--dbb", "x"],
      ["state", "get", "g", "--db", "x"],
      ["state", "get", "g", "k"],
      ["nope"],
    ]) {
      await expect(dryProgram().parseAsync(words, { from: "user" })).rejects.toBeInstanceOf(CommanderError);
    }
    await expect(
      dryProgram().parseAsync(["state", "get", "g", "k", "--db", "x"], { from: "user" }),
    ).resolves.toBeDefined();
  });

  it("documents every environment variable the commands read", () => {
    const source = commands.map((c) => helpOf(c)).join("\n");
    const cliSource = readFileSync(
      fileURLToPath(new URL("../../src/cli/commands/tenants.ts", import.meta.url)),
      "utf8",
    );
    for (const name of new Set([...(source + cliSource).matchAll(/STOREROOM_[A-Z_]+/g)].map((m) => m[0]))) {
      expect(docs, `${name} is documented`).toContain(name);
    }
  });
});
