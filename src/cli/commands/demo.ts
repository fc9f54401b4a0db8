import type { Command } from "commander";
import { MigrationSet, openSqlite } from "../../sql/index.js";
import { checkDatabaseFile } from "../existing-database.js";
import { printJson } from "../output.js";

const demoMigrations = new MigrationSet("demo").add({
  id: "demo/001-notes",
  up: async (tx) => {
    await tx.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL)");
  },
});

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("Open a SQLite database, migrate it, write a note and print the latest one.")
    .option("--db <path>", "database file", "./.storeroom/demo.db")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  storeroom demo --db ./demo.db\n\nExit codes: 0 ok, 2 error.")
    .action(async (opts: { db: string; json?: boolean }) => {
      checkDatabaseFile(opts.db, "demo");
      const { mkdirSync } = await import("node:fs");
      const { dirname } = await import("node:path");
      mkdirSync(dirname(opts.db), { recursive: true });
      const db = await openSqlite(opts.db);
      try {
        const migrated = await db.migrate(demoMigrations);
        await db.run("INSERT INTO notes (body, created_at) VALUES ($1, $2)", ["hello from storeroom", Date.now()]);
        const row = await db.get("SELECT id, body, created_at FROM notes ORDER BY id DESC LIMIT 1");
        if (opts.json) printJson({ database: opts.db, applied: migrated.applied, row });
        else {
          process.stdout.write(`database ${opts.db}, migrations applied now: ${migrated.applied.length}\n`);
          process.stdout.write(`${JSON.stringify(row)}\n`);
        }
      } finally {
        await db.close();
      }
    });
}
