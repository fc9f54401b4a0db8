import { resolve } from "node:path";
import type { Command } from "commander";
import { checkDatabaseFile } from "../existing-database.js";
import { printJson } from "../output.js";

interface MigrateOptions {
  database?: string;
  data: string;
  json?: boolean;
}

/** `storeroom migrate`: applies every control-database migration set (uploads, bus). */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      "Apply the control database migrations (uploads, bus, server and tenants tables) to a SQLite file or PostgreSQL.",
    )
    .option(
      "--database <url>",
      "SQLite path or postgres://... (env STOREROOM_DATABASE; default <data>/control.db)",
      process.env.STOREROOM_DATABASE,
    )
    .option(
      "--data <dir>",
      "data directory for the default SQLite path (env STOREROOM_DATA)",
      process.env.STOREROOM_DATA ?? "./.storeroom",
    )
    .option("--json", 'print {"database","sets":[{"set","applied":[ids],"ahead":[ids]}]}')
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  storeroom migrate                                   # ./.storeroom/control.db",
        "  storeroom migrate --database postgres://app@db/storeroom --json",
        "",
        "Tenant databases migrate themselves when first opened.",
        "",
        "Exit codes: 0 ok, 1 the database is ahead of this version (ids it does not know), 2 error.",
      ].join("\n"),
    )
    .action(async (opts: MigrateOptions) => {
      const { migrateControlDatabase, openControlDatabase, isPostgresUrl } = await import("../../server/index.js");
      const target = opts.database ?? resolve(opts.data, "control.db");
      checkDatabaseFile(target, "migrate", opts.database === undefined ? "--data" : "--database");
      const db = await openControlDatabase(target);
      try {
        const results = await migrateControlDatabase(db);
        const shown = isPostgresUrl(target) ? target.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@") : resolve(target);
        const sets = results.map(({ set, result }) => ({ set, applied: result.applied, ahead: result.ahead }));
        if (opts.json) printJson({ database: shown, sets });
        else {
          for (const s of sets) {
            process.stdout.write(
              `${s.set}: ${s.applied.length === 0 ? "up to date" : `applied ${s.applied.join(", ")}`}\n`,
            );
            if (s.ahead.length > 0)
              process.stdout.write(`${s.set}: database is ahead of this version: ${s.ahead.join(", ")}\n`);
          }
        }
        if (sets.some((s) => s.ahead.length > 0)) process.exitCode = 1;
      } finally {
        await db.close();
      }
    });
}
