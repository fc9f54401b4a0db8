import { resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../errors.js";
import { requireExistingDatabase } from "../existing-database.js";
import { requireExistingObjectStore } from "../existing-directory.js";
import { helpFooter } from "../help-footer.js";
import { requireMigratedStore } from "../migrated-store.js";
import { ExitCode, printJson } from "../output.js";
import { startProgress } from "../progress.js";

interface CommonOptions {
  db: string;
  objects: string;
  json?: boolean;
}

interface ReconcileCliOptions extends CommonOptions {
  referencesQuery: string;
  apply?: boolean;
  quarantinePrefix: string;
  limit: string;
  minAgeMs: string;
}

/**
 * Opens the control database and the object store for `fn`. Commands that write migrate the
 * uploads tables; with `readOnly` (a reconcile dry run) a SQLite file is opened read-only and
 * a database without current uploads tables is refused instead of given them.
 */
async function withStores<T>(
  opts: CommonOptions,
  fn: (ctx: {
    db: import("../../sql/index.js").Database;
    objects: import("../../objects/index.js").ObjectStore;
  }) => Promise<T>,
  { readOnly = false }: { readOnly?: boolean } = {},
): Promise<T> {
  const { openPostgres, openSqlite } = await import("../../sql/index.js");
  const { openObjectStore } = await import("../../objects/index.js");
  const { uploadsMigrations } = await import("../../uploads/index.js");
  // Every command works on an existing control database; a mistyped path must not create one.
  requireExistingDatabase(opts.db, "uploads.open");
  requireExistingObjectStore(opts.objects, "uploads.open");
  const db = /^postgres(ql)?:\/\//.test(opts.db)
    ? await openPostgres(opts.db)
    : await openSqlite(resolve(opts.db), { readonly: readOnly });
  try {
    if (!readOnly) await db.migrate(uploadsMigrations);
    else
      await requireMigratedStore(db, uploadsMigrations, {
        path: opts.db,
        absent: "uploads store",
        creators: "no uploads tables; storeroom migrate, storeroom serve and the other uploads commands create them",
        upgraders: "storeroom migrate does",
        op: "uploads.open",
      });
    const objects = await openObjectStore(opts.objects);
    try {
      return await fn({ db, objects });
    } finally {
      await objects.close();
    }
  } finally {
    await db.close();
  }
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption(
      "--db <path>",
      "control database: SQLite path or postgres://... (env STOREROOM_DATABASE)",
      process.env.STOREROOM_DATABASE,
    )
    .requiredOption(
      "--objects <url>",
      "object store: a path, file://..., s3://bucket?endpoint=... (env STOREROOM_OBJECTS)",
      process.env.STOREROOM_OBJECTS,
    )
    .option("--json", "print one JSON line (stable shape, see docs/uploads.md)");
}

/** A positive whole number given as `flag`, checked as typed (`--limit must be ..., got "abc"`). */
function positiveIntegerFlag(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`${flag} must be a positive integer, got ${JSON.stringify(text)}`, {
      op: "cli.uploads",
    });
  return n;
}

/** `storeroom uploads sweep|drain|reconcile`: run the upload workers once, from cron or by hand. */
export function registerUploads(program: Command): void {
  const uploads = helpFooter(
    program
      .command("uploads")
      .description("Upload bookkeeping: sweep expired claims, drain the delete queue, reconcile storage."),
    ["storeroom uploads sweep --db ./.storeroom/control.db --objects ./.storeroom/objects --json"],
    "0 ok, 1 a finding (drain: deferred deletes; reconcile: orphans), 2 error",
  );

  common(uploads.command("sweep"))
    .description("Reap expired unfinished uploads once (their objects are queued for deletion).")
    .addHelpText(
      "after",
      "\nExample:\n  storeroom uploads sweep --db ./.storeroom/control.db --objects ./.storeroom/objects --json\n\nExit codes: 0 ok (also when nothing expired), 2 error.",
    )
    .action(async (opts: CommonOptions) => {
      const { ClaimSweeper } = await import("../../uploads/index.js");
      await withStores(opts, async ({ db, objects }) => {
        const result = await new ClaimSweeper({ database: db, objects }).runOnce();
        const out = { expired: result.expired.map((c) => c.key), recovered: result.recovered.map((c) => c.key) };
        if (opts.json) printJson(out);
        else process.stdout.write(`expired ${out.expired.length}, recovered ${out.recovered.length}\n`);
      });
    });

  common(uploads.command("drain"))
    .description("Process the delete queue until no row is due (failures are deferred with backoff).")
    .addHelpText(
      "after",
      "\nExample:\n  storeroom uploads drain --db postgres://app@db/storeroom --objects s3://uploads --json\n\nExit codes: 0 all due rows deleted, 1 some were deferred or dead-lettered, 2 error.",
    )
    .action(async (opts: CommonOptions) => {
      const { DeleteWorker } = await import("../../uploads/index.js");
      await withStores(opts, async ({ db, objects }) => {
        const worker = new DeleteWorker({ database: db, objects });
        const totals = { deleted: 0, deferred: 0, deadLettered: 0 };
        for (;;) {
          const { leased, results } = await worker.runOnce();
          if (leased === 0) break;
          for (const r of results) {
            if (r.status === "deleted") totals.deleted++;
            else if (r.status === "deferred") totals.deferred++;
            else totals.deadLettered++;
          }
        }
        if (opts.json) printJson(totals);
        else
          process.stdout.write(
            `deleted ${totals.deleted}, deferred ${totals.deferred}, dead-lettered ${totals.deadLettered}\n`,
          );
        if (totals.deferred + totals.deadLettered > 0) process.exitCode = ExitCode.finding;
      });
    });

  common(uploads.command("reconcile"))
    .description("Find objects nothing owns and references whose object is missing; quarantine orphans with --apply.")
    .requiredOption(
      "--references-query <sql>",
      "SQL on the same database returning every referenced key as column `key`",
    )
    .option("--apply", "quarantine the orphans (default: dry run)")
    .option("--quarantine-prefix <prefix>", "where orphans are moved", "quarantine/")
    .option("--limit <n>", "most orphans per run", "1000")
    .option("--min-age-ms <ms>", "objects younger than this are never orphans", "3600000")
    .addHelpText(
      "after",
      '\nExample:\n  storeroom uploads reconcile --db ./control.db --objects ./objects \\\n    --references-query "SELECT cover AS key FROM posts WHERE cover IS NOT NULL" --json\n\nExit codes: 0 nothing found, 1 orphans or dangling references found, 2 error.',
    )
    .action(async (opts: ReconcileCliOptions) => {
      const limit = positiveIntegerFlag(opts.limit, "--limit");
      const minAgeMs = positiveIntegerFlag(opts.minAgeMs, "--min-age-ms");
      const { reconcile } = await import("../../uploads/index.js");
      await withStores(
        opts,
        async ({ db, objects }) => {
          let all: Set<string> | undefined;
          const load = async () => {
            all ??= referencedKeySet(await db.all<Record<string, unknown>>(opts.referencesQuery));
            return all;
          };
          const bar = await startProgress("objects scanned", opts);
          let result: Awaited<ReturnType<typeof reconcile>>;
          try {
            result = await reconcile({
              database: db,
              objects,
              dryRun: opts.apply !== true,
              quarantinePrefix: opts.quarantinePrefix,
              limit,
              minAgeMs,
              onProgress: (done) => bar?.update(done),
              references: {
                referencedKeys: async (keys) => {
                  const refs = await load();
                  return new Set(keys.filter((k) => refs.has(k)));
                },
                async *allReferences() {
                  yield* await load();
                },
              },
            });
          } finally {
            bar?.stop();
          }
          if (opts.json) printJson(result);
          else {
            process.stdout.write(
              `${result.dryRun ? "dry run: " : ""}scanned ${result.scanned}, orphans ${result.orphans.length}, quarantined ${result.quarantined.length}, purged ${result.purged.length}, dangling references ${result.danglingReferences.length}\n`,
            );
            for (const k of result.orphans) process.stdout.write(`orphan ${k}\n`);
            for (const k of result.danglingReferences) process.stdout.write(`dangling ${k}\n`);
          }
          if (result.orphans.length + result.danglingReferences.length > 0) process.exitCode = ExitCode.finding;
        },
        { readOnly: opts.apply !== true },
      );
    });
}

/**
 * The keys a `--references-query` returned, from its `key` column; a NULL is no reference. A
 * query without that column is refused: every key would read as "undefined", so every object
 * as an orphan.
 */
function referencedKeySet(rows: readonly Record<string, unknown>[]): Set<string> {
  const first = rows[0];
  if (first !== undefined && !Object.hasOwn(first, "key")) {
    throw new InvalidArgumentError(
      `--references-query must return a column named key, got ${Object.keys(first).join(", ") || "no columns"} (alias it: SELECT cover AS key ...)`,
    );
  }
  const keys = new Set<string>();
  for (const row of rows) if (row.key !== null && row.key !== undefined) keys.add(String(row.key));
  return keys;
}
