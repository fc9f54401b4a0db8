import { readFileSync } from "node:fs";
import { Command } from "commander";
import { commands } from "./commands/index.js";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** The `storeroom` command tree. Exit codes: 0 ok, 1 a finding (e.g. a broken chain), 2 an error. */
export function buildProgram(): Command {
  const program = new Command("storeroom")
    .description("A storage toolkit on SQLite, PostgreSQL and S3-compatible object storage.")
    .version(packageVersion(), "-v, --version")
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride((err) => {
      // Usage errors exit 2; --help and --version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  for (const register of commands) register(program);
  return program;
}
