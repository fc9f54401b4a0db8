import type { Command } from "commander";
import { ExitCode, printJson } from "../output.js";
import { withStateStore } from "./state.js";

/** `storeroom journal query`: reads the state store's journal. */
export function registerJournal(program: Command): void {
  const journal = program
    .command("journal")
    .description("Query the state store's append-only journal.")
    .addHelpText("after", "\nExample:\n  storeroom journal query --db ./state.db --json\n\nExit codes: 0 ok, 2 error.");
  journal
    .command("query [query]")
    .description(
      "Print journal rows: all non-archived rows, a read-only SELECT/WITH statement, or a Flux subset query (from, range, filter).",
    )
    .requiredOption("--db <path>", "SQLite database file of the state store")
    .option("--json", "print one line of JSON")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  storeroom journal query --db ./state.db",
        `  storeroom journal query 'from(bucket: "store") |> range(start: -24h) |> filter(fn: (r) => r._measurement == "sessions")' --db ./state.db --json`,
        "  storeroom journal query 'SELECT measurement, COUNT(*) AS n FROM journal_entries GROUP BY measurement' --db ./state.db",
        "",
        "Exit codes: 0 ok, 2 error (unsupported Flux, a statement that writes, no database file, ...).",
      ].join("\n"),
    )
    .action((query: string | undefined, opts: { db: string; json?: boolean }) =>
      withStateStore(
        opts,
        async (s) => {
          const rows = await s.queryJournal(query ?? "");
          if (opts.json) printJson({ rows });
          else for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
          return ExitCode.ok;
        },
        { access: "read" },
      ),
    );
}
