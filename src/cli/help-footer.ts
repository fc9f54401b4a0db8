import type { Command } from "commander";

/**
 * Ends `cmd`'s `--help` with its examples and exit codes, the two lines docs/cli.md promises
 * for every command (a test checks them).
 */
export function helpFooter(cmd: Command, examples: readonly string[], exitCodes: string): Command {
  const heading = examples.length === 1 ? "Example:" : "Examples:";
  return cmd.addHelpText(
    "after",
    ["", heading, ...examples.map((e) => `  ${e}`), "", `Exit codes: ${exitCodes}.`].join("\n"),
  );
}
