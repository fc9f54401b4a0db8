import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { type AuditCheckpoint, AuditLog, parseCheckpoint } from "../../bus/index.js";
import { InvalidArgumentError, NotFoundError } from "../../errors.js";
import { redactText } from "../../internal/redact.js";
import { type Database, openPostgres, openSqlite, tableExists } from "../../sql/index.js";
import { requireExistingDatabase } from "../existing-database.js";
import { helpFooter } from "../help-footer.js";
import { ExitCode, printJson } from "../output.js";
import { startProgress } from "../progress.js";

interface AuditDbOptions {
  db: string;
  schema?: string;
  json?: boolean;
}

/** `storeroom audit verify | checkpoint`: the bus audit chain, as `peerbus audit verify`. */
export function registerAudit(program: Command): void {
  const audit = helpFooter(
    program.command("audit").description("Inspect the bus audit chain (BLAKE3 hash chain)."),
    ["storeroom audit verify --db ./.storeroom/bus/acme.db --json"],
    "0 ok, 1 a broken chain (verify), 2 error",
  );
  audit
    .command("verify")
    .description("Walk the audit chain and report the first break.")
    .requiredOption("--db <path>", "SQLite file or postgres://... URL holding the bus tables")
    .option("--schema <name>", "PostgreSQL schema of the bus tables")
    .option("--checkpoint <file>", "signed checkpoint JSON ({seq, hash, signature}) the log must still extend")
    .option("--public-key <file>", "Ed25519 public key (PEM) that signed the checkpoint")
    .option("--json", 'print {"intact":true,"rows":n} or {"intact":false,"rows":n,"break":{"index","seq","detail"}}')
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  storeroom audit verify --db ./bus.db",
        "  storeroom audit verify --db ./bus.db --checkpoint cp.json --public-key audit.pub --json",
        "",
        "Exit codes: 0 intact, 1 a break was found (printed), 2 operational error.",
      ].join("\n"),
    )
    .action(async (opts: AuditDbOptions & { checkpoint?: string; publicKey?: string }) => {
      if ((opts.checkpoint === undefined) !== (opts.publicKey === undefined)) {
        throw new InvalidArgumentError("--checkpoint and --public-key go together");
      }
      const checkpoint = opts.checkpoint === undefined ? undefined : readCheckpoint(opts.checkpoint);
      const publicKey = opts.publicKey === undefined ? undefined : readInput(opts.publicKey, "--public-key");
      await withAuditLog(opts, async (log) => {
        const bar = await startProgress("rows verified", opts);
        const onProgress = (done: number, total?: number) => bar?.update(done, total);
        let found: Awaited<ReturnType<typeof log.verify>>;
        try {
          found = await log.verify(checkpoint === undefined ? { onProgress } : { checkpoint, publicKey, onProgress });
        } finally {
          bar?.stop();
        }
        const rows = await log.count();
        if (opts.json) printJson(found === null ? { intact: true, rows } : { intact: false, rows, break: found });
        else if (found === null) process.stdout.write(`audit chain intact: ${rows} rows\n`);
        else process.stdout.write(`audit chain BROKEN at index ${found.index} (seq ${found.seq}): ${found.detail}\n`);
        if (found !== null) process.exitCode = ExitCode.finding;
      });
    });
  audit
    .command("checkpoint")
    .description("Sign the chain's last row with an Ed25519 private key; keep the output away from the database.")
    .requiredOption("--db <path>", "SQLite file or postgres://... URL holding the bus tables")
    .option("--schema <name>", "PostgreSQL schema of the bus tables")
    .requiredOption("--private-key <file>", "Ed25519 private key (PEM), e.g. from `openssl genpkey -algorithm ed25519`")
    .option("--out <file>", "write the checkpoint JSON here instead of stdout")
    .option("--json", 'print {"checkpoint":{"seq","hash","signature"},"out":file|null,"rows":n}')
    .addHelpText(
      "after",
      [
        "",
        "Example:",
        "  openssl genpkey -algorithm ed25519 -out audit.key && openssl pkey -in audit.key -pubout -out audit.pub",
        "  storeroom audit checkpoint --db ./bus.db --private-key audit.key --out /safe/place/cp.json --json",
        "",
        "Exit codes: 0 signed, 2 error (also an empty log: nothing to sign).",
      ].join("\n"),
    )
    .action(async (opts: AuditDbOptions & { privateKey: string; out?: string }) => {
      const key = readInput(opts.privateKey, "--private-key");
      await withAuditLog(opts, async (log) => {
        const cp: AuditCheckpoint = await log.checkpoint(key);
        const text = `${JSON.stringify(cp)}\n`;
        if (opts.out !== undefined) writeFileSync(opts.out, text);
        if (opts.json) printJson({ checkpoint: cp, out: opts.out ?? null, rows: await log.count() });
        else if (opts.out === undefined) process.stdout.write(text);
        else process.stdout.write(`signed seq ${cp.seq} into ${opts.out}\n`);
      });
    });
}

/** Reads a file named by `flag`; a missing or unreadable file is an error naming both. */
function readInput(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw new InvalidArgumentError(`${flag} ${path}: ${reason}`, { op: "cli.audit", cause: err });
  }
}

function readCheckpoint(path: string): AuditCheckpoint {
  const text = readInput(path, "--checkpoint");
  try {
    return parseCheckpoint(text);
  } catch (err) {
    throw new InvalidArgumentError(`--checkpoint ${path}: ${(err as Error).message}`, { op: "cli.audit", cause: err });
  }
}

async function withAuditLog(opts: AuditDbOptions, fn: (log: AuditLog) => Promise<void>): Promise<void> {
  let db: Database;
  if (/^postgres(ql)?:\/\//.test(opts.db)) {
    db = await openPostgres(opts.db, opts.schema === undefined ? { max: 1 } : { schema: opts.schema, max: 1 });
  } else {
    // Never create a database by inspecting it.
    requireExistingDatabase(opts.db, "cli.audit");
    db = await openSqlite(opts.db, { readonly: true });
  }
  try {
    if (!(await tableExists(db, "bus_audit")))
      throw new NotFoundError(`no bus audit log in ${redactText(opts.db)} (no bus_audit table)`, { op: "cli.audit" });
    await fn(await AuditLog.open({ database: db, migrate: false }));
  } finally {
    await db.close();
  }
}
