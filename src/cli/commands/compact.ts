import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../errors.js";
import { ExitCode, printJson } from "../output.js";
import { startProgress } from "../progress.js";
import { withStateStore } from "./state.js";

interface CompactCliOptions {
  db: string;
  before: string;
  output?: string;
  format?: string;
  json?: boolean;
}

/** Parses `--before`: milliseconds since the epoch or an ISO 8601 / RFC 3339 time. */
function parseBefore(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (Number.isNaN(ms))
    throw new InvalidArgumentError(`--before must be ms since the epoch or an ISO time, got "${text}"`);
  return ms;
}

/** `storeroom compact`: archives old journal rows of a state store. */
export function registerCompact(program: Command): void {
  program
    .command("compact")
    .description("Archive journal rows committed before a time into a compressed JSONL file and mark them archived.")
    .requiredOption("--db <path>", "SQLite database file of the state store")
    .requiredOption("--before <time>", "archive rows committed before this time (ISO 8601 or ms)")
    .option("--output <dir>", "archive directory (default: archive/ next to the database)")
    .option("--format <format>", "gzip or zstd", "gzip")
    .option("--json", 'print {"path","rows"}')
    .addHelpText(
      "after",
      [
        "",
        "Example:",
        "  storeroom compact --db ./state.db --before 2026-01-01T00:00:00Z --output ./archive --format zstd --json",
        "",
        "Exit codes: 0 ok (also when nothing was due), 2 error (also when the database file does not exist).",
      ].join("\n"),
    )
    .action((opts: CompactCliOptions) => {
      let before = 0;
      return withStateStore(
        opts,
        async (s) => {
          const bar = await startProgress("rows archived", opts);
          let res: Awaited<ReturnType<typeof s.compact>>;
          try {
            res = await s.compact({
              before,
              output: opts.output ?? join(dirname(resolve(opts.db)), "archive"),
              format: opts.format,
              onProgress: (done, total) => bar?.update(done, total),
            });
          } finally {
            bar?.stop();
          }
          if (opts.json) printJson(res);
          else
            process.stdout.write(
              res.path === null ? "nothing to archive\n" : `archived ${res.rows} rows to ${res.path}\n`,
            );
          return ExitCode.ok;
        },
        {
          access: "write",
          check: () => {
            before = parseBefore(opts.before);
          },
        },
      );
    });
}
