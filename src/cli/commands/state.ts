import type { Command } from "commander";
import { InvalidArgumentError, isStoreError } from "../../errors.js";
import type { StateStore } from "../../state/index.js";
import { checkDatabaseFile, requireExistingDatabase } from "../existing-database.js";
import { requireMigratedStore } from "../migrated-store.js";
import { ExitCode, printJson } from "../output.js";

interface DbOptions {
  db: string;
  json?: boolean;
}

/**
 * What a state command does to `--db`: `read` needs the current state tables and never creates
 * or upgrades them, `write` needs a state store and may upgrade an older one, `create` may
 * create the file and the tables.
 */
export type StateAccess = "read" | "write" | "create";

/**
 * Opens the store at `--db`, runs `fn`, closes it; an error becomes exit code 2 with
 * `storeroom: <message>` on stderr (with `--json` also `{"error":{"code","message"}}` on
 * stdout). Only `create` (`state set`) may create the database file or its tables; `check`
 * validates the arguments first.
 */
export async function withStateStore(
  opts: DbOptions,
  fn: (state: StateStore) => Promise<number>,
  { access = "read", check }: { access?: StateAccess; check?: () => void } = {},
): Promise<void> {
  const { StateStore } = await import("../../state/index.js");
  let code: number = ExitCode.error;
  try {
    // Bad input changes nothing: arguments are checked before the database is opened (or created).
    check?.();
    if (access === "create") checkDatabaseFile(opts.db, "state.open");
    else {
      requireExistingDatabase(opts.db, "state.open");
      await requireStateTables(opts.db, access);
    }
    // A one-shot command never needs the background purge.
    const state = await StateStore.open({ databasePath: opts.db, purgeIntervalMs: 0, migrate: access !== "read" });
    try {
      code = await fn(state);
    } finally {
      await state.close();
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (opts.json) printJson({ error: { code: isStoreError(err) ? err.code : "ERROR", message } });
    process.stderr.write(`storeroom: ${message}\n`);
    code = ExitCode.error;
  }
  process.exitCode = code;
}

/**
 * Looks at `path` through a read-only connection: a file without state tables (an empty file,
 * another program's database) is refused rather than given them, and so is an older layout
 * when the command only reads.
 */
async function requireStateTables(path: string, access: "read" | "write"): Promise<void> {
  const { openSqlite } = await import("../../sql/index.js");
  const { stateMigrations } = await import("../../state/index.js");
  const db = await openSqlite(path, { readonly: true });
  try {
    await requireMigratedStore(db, stateMigrations, {
      path,
      absent: "state store",
      creators: "no state tables; only state set creates them",
      upgraders: "a command that writes (state set, state delete, compact) does",
      // Layouts from before migrations were recorded; opening the store upgrades them.
      legacyTables: ["entries", "kv"],
      allowOlder: access === "write",
      op: "state.open",
    });
  } finally {
    await db.close();
  }
}

function dbCommand(parent: Command, name: string, description: string, example: string, exitCodes: string): Command {
  return parent
    .command(name)
    .description(description)
    .requiredOption("--db <path>", "SQLite database file of the state store (only set creates it)")
    .option("--json", "print one line of JSON")
    .addHelpText("after", `\nExample:\n  ${example}\n\nExit codes: ${exitCodes}.`);
}

/** `--ttl`: a positive whole number of milliseconds, as typed. */
function parseTtl(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text)))
    throw new InvalidArgumentError(`--ttl must be a positive integer (milliseconds), got ${JSON.stringify(text)}`, {
      op: "cli.state",
    });
  return Number(text);
}

const FOUND_OR_NOT = "0 ok, 1 not found, 2 error (also when the database file does not exist)";
const OK_OR_ERROR = "0 ok, 2 error (also when the database file does not exist)";

/** `storeroom state get|set|delete|ls|render`: the grouped state store on a SQLite file. */
export function registerState(program: Command): void {
  const state = program
    .command("state")
    .description("Read and write the grouped state store (groups of string keys with optional TTL).")
    .addHelpText(
      "after",
      "\nExample:\n  storeroom state get config colour --db ./state.db\n\nExit codes: 0 ok, 1 not found (get, delete), 2 error.",
    );

  dbCommand(
    state,
    "get <group> <key>",
    "Print a live value.",
    "storeroom state get config colour --db ./state.db",
    FOUND_OR_NOT,
  ).action((group: string, key: string, opts: DbOptions) =>
    withStateStore(opts, async (s) => {
      try {
        const value = await s.get(group, key);
        if (opts.json) printJson({ group, key, value });
        else process.stdout.write(`${value}\n`);
        return ExitCode.ok;
      } catch (err) {
        if (!isStoreError(err, "NOT_FOUND")) throw err;
        if (opts.json) printJson({ group, key, found: false });
        else process.stderr.write(`not found: ${group}/${key}\n`);
        return ExitCode.finding;
      }
    }),
  );

  dbCommand(
    state,
    "set <group> <key> <value>",
    "Write a value (clears any TTL, or sets one with --ttl).",
    "storeroom state set session token abc123 --ttl 60000 --db ./state.db",
    "0 ok, 2 error",
  )
    .option("--ttl <ms>", "expire after this many milliseconds")
    .action((group: string, key: string, value: string, opts: DbOptions & { ttl?: string }) => {
      let ttlMs: number | null = null;
      return withStateStore(
        opts,
        async (s) => {
          if (ttlMs === null) await s.set(group, key, value);
          else await s.setWithTtl(group, key, value, ttlMs);
          if (opts.json) printJson({ group, key, value, ttlMs });
          return ExitCode.ok;
        },
        {
          access: "create",
          check: () => {
            if (opts.ttl !== undefined) ttlMs = parseTtl(opts.ttl);
          },
        },
      );
    });

  dbCommand(
    state,
    "delete <group> [key]",
    "Delete a key, or the whole group when no key is given.",
    "storeroom state delete cache --db ./state.db",
    FOUND_OR_NOT,
  ).action((group: string, key: string | undefined, opts: DbOptions) =>
    withStateStore(
      opts,
      async (s) => {
        let deleted: boolean;
        if (key === undefined) {
          const entries = await s.deleteGroup(group);
          deleted = entries > 0;
          if (opts.json) printJson({ group, key: null, deleted, entries });
          else if (deleted) process.stdout.write(`deleted ${entries} entries from ${group}\n`);
          else process.stderr.write(`not found: ${group}\n`);
        } else {
          deleted = await s.exists(group, key);
          await s.delete(group, key);
          if (opts.json) printJson({ group, key, deleted });
          else if (deleted) process.stdout.write(`deleted ${group}/${key}\n`);
          else process.stderr.write(`not found: ${group}/${key}\n`);
        }
        return deleted ? ExitCode.ok : ExitCode.finding;
      },
      { access: "write" },
    ),
  );

  dbCommand(
    state,
    "ls [group]",
    "List groups with their live key counts, or the entries of one group.",
    "storeroom state ls --prefix tenant-a: --db ./state.db --json",
    OK_OR_ERROR,
  )
    .option("--prefix <prefix>", "only groups (with a group: only keys) starting with this prefix")
    .action((group: string | undefined, opts: DbOptions & { prefix?: string }) =>
      withStateStore(opts, async (s) => {
        if (group === undefined) {
          const groups = [];
          for (const name of await s.groups(opts.prefix ?? "")) groups.push({ group: name, keys: await s.count(name) });
          if (opts.json) printJson({ groups });
          else for (const g of groups) process.stdout.write(`${g.group}\t${g.keys}\n`);
          return ExitCode.ok;
        }
        const entries = [];
        const prefix = opts.prefix ?? "";
        for await (const e of s.all(group)) if (e.key.startsWith(prefix)) entries.push(e);
        if (opts.json) printJson({ group, entries });
        else for (const e of entries) process.stdout.write(`${e.key}=${e.value}\n`);
        return ExitCode.ok;
      }),
    );

  dbCommand(
    state,
    "render <template> <group>",
    "Render {{ .key }} placeholders with a group's values (missing keys render <no value>).",
    'storeroom state render "Hello {{ .name }}" user --db ./state.db',
    OK_OR_ERROR,
  ).action((template: string, group: string, opts: DbOptions) =>
    withStateStore(opts, async (s) => {
      const text = await s.render(template, group);
      if (opts.json) printJson({ group, text });
      else process.stdout.write(`${text}\n`);
      return ExitCode.ok;
    }),
  );
}
