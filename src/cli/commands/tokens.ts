import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError, NotFoundError } from "../../errors.js";
import { helpFooter } from "../help-footer.js";
import { ExitCode, printJson } from "../output.js";

interface TokenFileOptions {
  data: string;
  file?: string;
  json?: boolean;
}

type TokenStore = import("../../server/index.js").TokenStore;
type TokenRecord = import("../../server/index.js").TokenRecord;

/**
 * Opens the tokens file. `ls` and `revoke` (`existing`) need one: a mistyped `--data` or
 * `--file` is an error, and no directory is created on the way; a directory is refused by name.
 */
async function openStore(
  opts: TokenFileOptions,
  { existing = false }: { existing?: boolean } = {},
): Promise<TokenStore> {
  const { TokenStore } = await import("../../server/index.js");
  const path = resolve(opts.file ?? join(opts.data, "tokens.json"));
  const flag = opts.file === undefined ? "--data" : "--file";
  if (existsSync(path) && statSync(path).isDirectory())
    throw new InvalidArgumentError(`${flag}: the tokens file ${path} is a directory`, { op: "cli.tokens" });
  if (existing && !existsSync(path))
    throw new NotFoundError(`${flag}: no tokens file at ${path} (tokens add creates one)`, { op: "cli.tokens" });
  const store = await TokenStore.open({ path });
  if (store.migrated > 0) {
    process.stderr.write(`storeroom: hashed ${store.migrated} clear-text token(s) in ${path}\n`);
  }
  return store;
}

function fileOptions(cmd: Command): Command {
  return cmd
    .option(
      "--data <dir>",
      "data directory of the server (env STOREROOM_DATA)",
      process.env.STOREROOM_DATA ?? "./.storeroom",
    )
    .option("--file <path>", "tokens file (default <data>/tokens.json)")
    .option("--json", "print one JSON line (stable shape, see docs/server.md)");
}

function describe(record: TokenRecord): string {
  const who = record.userId === undefined ? `org ${record.orgId}` : `org ${record.orgId}, user ${record.userId}`;
  const roles = record.roles.length === 0 ? "no roles" : `roles ${record.roles.join(",")}`;
  return `${who}, ${roles}${record.expiresAt === undefined ? "" : `, expires ${record.expiresAt}`}`;
}

/** `storeroom tokens add | ls | revoke`: the bearer tokens of `storeroom serve`, hashed at rest. */
export function registerTokens(program: Command): void {
  const tokens = helpFooter(
    program
      .command("tokens")
      .description(
        "Manage the bearer tokens of `storeroom serve` (hashed at rest; a running server picks changes up).",
      ),
    ["storeroom tokens add --org acme --role admin --expires 30d --data ./.storeroom"],
    "0 ok, 2 error (also an unknown token id)",
  );

  fileOptions(
    tokens
      .command("add")
      .description("Create a token and print it once (only its SHA-256 is stored).")
      .requiredOption("--org <org>", "org slug the token acts for")
      .option("--user <user>", "user slug (state then lives in the user's tenant)")
      .option("--role <role...>", "role(s): admin (its own org), operator (every org), or your own names")
      .option("--expires <duration>", "lifetime like 90s, 30m, 12h, 30d, 8w (default: never)")
      .option("--label <text>", "note shown by `tokens ls`"),
  )
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  storeroom tokens add --org acme --role admin --label 'acme console'",
        "  storeroom tokens add --org acme --user ada --expires 30d --json",
        "",
        "Exit codes: 0 created, 2 error.",
      ].join("\n"),
    )
    .action(
      async (
        opts: TokenFileOptions & { org: string; user?: string; role?: string[]; expires?: string; label?: string },
      ) => {
        const { parseDuration } = await import("../../internal/duration.js");
        const { TokenStore } = await import("../../server/index.js");
        const request = {
          orgId: opts.org,
          roles: opts.role ?? [],
          ...(opts.user === undefined ? {} : { userId: opts.user }),
          ...(opts.expires === undefined ? {} : { expiresInMs: parseDuration(opts.expires, "--expires") }),
          ...(opts.label === undefined ? {} : { label: opts.label }),
        };
        // Bad input is refused before the tokens file (and its directory) is opened or created.
        TokenStore.checkNewToken(request);
        const store = await openStore(opts);
        const created = await store.add(request);
        if (opts.json) printJson({ token: created.token, ...created.record });
        else {
          process.stdout.write(`${created.token}\n`);
          process.stderr.write(`token ${created.record.id}: ${describe(created.record)} (shown once: store it now)\n`);
        }
      },
    );

  fileOptions(
    tokens
      .command("ls")
      .description("List tokens (ids, orgs, users, roles, expiry; never the secrets).")
      .option("--org <org>", "only this org's tokens"),
  )
    .addHelpText(
      "after",
      [
        "",
        "Example:",
        "  storeroom tokens ls --org acme --json",
        "",
        "Exit codes: 0 ok, 2 error (also when there is no tokens file).",
      ].join("\n"),
    )
    .action(async (opts: TokenFileOptions & { org?: string }) => {
      const store = await openStore(opts, { existing: true });
      const list = store.list({ orgId: opts.org });
      if (opts.json) printJson({ tokens: list });
      else if (list.length === 0) process.stdout.write("no tokens\n");
      else for (const r of list) process.stdout.write(`${r.id}  ${describe(r)}${r.label ? `  "${r.label}"` : ""}\n`);
    });

  fileOptions(tokens.command("revoke").description("Remove a token; it answers 401 from then on.").argument("<id>"))
    .addHelpText(
      "after",
      [
        "",
        "Example:",
        "  storeroom tokens revoke 3f9c2a7e --data ./.storeroom",
        "",
        "Exit codes: 0 revoked, 2 no such id or an error.",
      ].join("\n"),
    )
    .action(async (id: string, opts: TokenFileOptions) => {
      const store = await openStore(opts, { existing: true });
      const removed = await store.revoke(id);
      if (opts.json) printJson({ revoked: removed });
      else process.stdout.write(`revoked ${removed.id} (${describe(removed)})\n`);
      process.exitCode = ExitCode.ok;
    });
}
