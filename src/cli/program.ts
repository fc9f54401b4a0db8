import { readFileSync } from "node:fs";
import { Command, type Option } from "commander";
import { commands } from "./commands/index.js";
import { helpFooter } from "./help-footer.js";

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Every command under `root`, depth first, `root` included. */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/**
 * Commander checks required options before arguments and unknown flags, so `--dbb x` and a
 * missing argument would both report the missing `--db`. The check moves after them: options
 * stay required, and the preAction hook reports the first one missing.
 */
function checkRequiredOptionsLast(program: Command): void {
  const required = new Map<Command, Option[]>();
  for (const cmd of allCommands(program)) {
    const mandatory = cmd.options.filter((o) => o.mandatory);
    for (const option of mandatory) option.makeOptionMandatory(false);
    if (mandatory.length > 0) required.set(cmd, mandatory);
  }
  program.hook("preAction", (_root, action) => {
    for (const option of required.get(action) ?? []) {
      if (action.getOptionValue(option.attributeName()) === undefined) {
        action.error(`error: required option '${option.flags}' not specified`, {
          code: "commander.missingMandatoryOptionValue",
          exitCode: 2,
        });
      }
    }
  });
}

/**
 * The `storeroom` command tree. Exit codes: 0 ok, 1 a finding (e.g. a broken chain), 2 an
 * error. Usage errors print `storeroom: <message>` and the command's help on stderr.
 */
export function buildProgram(): Command {
  const program = new Command("storeroom")
    .description("A storage toolkit on SQLite, PostgreSQL and S3-compatible object storage.")
    .version(packageVersion(), "-v, --version")
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "storeroom: ")) })
    .exitOverride((err) => {
      // Usage errors exit 2; --help and --version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  helpFooter(
    program,
    ["storeroom serve", "storeroom state get config colour --db ./state.db"],
    "0 ok, 1 a finding (a missing key, a broken chain, orphans, ...), 2 error; each command's --help says which",
  );
  for (const register of commands) register(program);
  checkRequiredOptionsLast(program);
  return program;
}
