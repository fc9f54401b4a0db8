/** Prints `value` as one line of JSON (the stable `--json` shape of a command). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Exit codes shared by every command. */
export const ExitCode = Object.freeze({ ok: 0, finding: 1, error: 2 });
