import type { Command } from "commander";
import { AuditLog, Broker, MessageStore, MIN_HMAC_SECRET_BYTES } from "../../bus/index.js";
import { InvalidArgumentError } from "../../errors.js";
import { type Database, openPostgres, openSqlite } from "../../sql/index.js";
import { parseAckedRetentionMs } from "../acked-retention.js";
import { checkDatabaseFile } from "../existing-database.js";
import { helpFooter } from "../help-footer.js";
import { printJson } from "../output.js";

/** Flags of `storeroom bus serve`; each falls back to a `STOREROOM_BUS_*` variable. */
export interface BusServeFlags {
  listen?: string;
  tokens?: string;
  hmacSecret?: string;
  db?: string;
  schema?: string;
  ackedRetentionMs?: string;
  json?: boolean;
}

/** The resolved `bus serve` configuration. */
export interface BusServeOptions {
  host: string;
  port: number;
  tokens: string[];
  hmacSecret: string;
  db: string;
  schema: string | undefined;
  /** How long acked messages are kept for duplicate detection before they are pruned. */
  ackedRetentionMs: number;
}

/**
 * Resolves flags over environment over defaults: listen `127.0.0.1:47821`, db
 * `./storeroom-bus.db`, acked retention 1 hour. Throws {@link InvalidArgumentError} without
 * tokens, with a secret shorter than 32 bytes, with a bad listen address or retention.
 */
export function resolveBusServeOptions(flags: BusServeFlags, env: NodeJS.ProcessEnv = process.env): BusServeOptions {
  const listen = flags.listen ?? env.STOREROOM_BUS_LISTEN ?? "127.0.0.1:47821";
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) throw new InvalidArgumentError(`listen must be HOST:PORT, got "${listen}"`);
  const tokens = (flags.tokens ?? env.STOREROOM_BUS_TOKENS ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0)
    throw new InvalidArgumentError("at least one token is required (--tokens or STOREROOM_BUS_TOKENS)");
  const hmacSecret = flags.hmacSecret ?? env.STOREROOM_BUS_HMAC_SECRET ?? "";
  if (Buffer.byteLength(hmacSecret, "utf8") < MIN_HMAC_SECRET_BYTES) {
    throw new InvalidArgumentError(
      `the HMAC secret must be at least ${MIN_HMAC_SECRET_BYTES} bytes (--hmac-secret or STOREROOM_BUS_HMAC_SECRET)`,
    );
  }
  const ackedRetentionMs = parseAckedRetentionMs(
    flags.ackedRetentionMs ?? env.STOREROOM_BUS_ACKED_RETENTION_MS ?? "3600000",
    "--acked-retention-ms",
    "STOREROOM_BUS_ACKED_RETENTION_MS",
  );
  return {
    host: m[1] ?? (m[2] === "" ? "127.0.0.1" : (m[2] as string)),
    port,
    tokens,
    hmacSecret,
    db: flags.db ?? env.STOREROOM_BUS_DB ?? "./storeroom-bus.db",
    schema: flags.schema ?? env.STOREROOM_BUS_SCHEMA,
    ackedRetentionMs,
  };
}

/** `storeroom bus serve`: a standalone peerbus v1 broker. */
export function registerBus(program: Command): void {
  const bus = helpFooter(
    program.command("bus").description("The durable peer message bus (peerbus wire protocol v1)."),
    ["STOREROOM_BUS_TOKENS=t0ken STOREROOM_BUS_HMAC_SECRET=... storeroom bus serve --db ./bus.db"],
    "0 stopped cleanly, 2 error",
  );
  bus
    .command("serve")
    .description("Run a WebSocket broker over a SQLite file or PostgreSQL until SIGINT/SIGTERM.")
    .option("--listen <host:port>", "address (env STOREROOM_BUS_LISTEN; default 127.0.0.1:47821)")
    .option("--tokens <list>", "comma-separated bearer tokens (env STOREROOM_BUS_TOKENS)")
    .option("--hmac-secret <secret>", "shared HMAC secret, >= 32 bytes (env STOREROOM_BUS_HMAC_SECRET)")
    .option("--db <path>", "SQLite file or postgres://... (env STOREROOM_BUS_DB; default ./storeroom-bus.db)")
    .option("--schema <name>", "PostgreSQL schema (env STOREROOM_BUS_SCHEMA)")
    .option(
      "--acked-retention-ms <ms>",
      'keep acked messages this long for duplicate detection, then prune them; "infinity" keeps them (env STOREROOM_BUS_ACKED_RETENTION_MS; default 3600000)',
    )
    .option("--json", 'print {"listening":"ws://host:port","db":path} once ready')
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  STOREROOM_BUS_TOKENS=t1,t2 STOREROOM_BUS_HMAC_SECRET=$(openssl rand -hex 32) storeroom bus serve",
        "  storeroom bus serve --listen 0.0.0.0:47821 --db postgres://app@db/storeroom --schema bus",
        "",
        "Flags win over environment variables. The secret in a flag is visible in `ps`; prefer the variable.",
        "",
        "Exit codes: 0 stopped by SIGINT/SIGTERM, 2 error (bad configuration, database, port in use).",
      ].join("\n"),
    )
    .action(async (flags: BusServeFlags) => {
      const config = resolveBusServeOptions(flags);
      checkDatabaseFile(config.db, "bus.serve");
      const db: Database = /^postgres(ql)?:\/\//.test(config.db)
        ? await openPostgres(config.db, config.schema === undefined ? {} : { schema: config.schema })
        : await openSqlite(config.db, { backgroundCheckpoint: {} });
      const store = await MessageStore.open({ database: db });
      const audit = await AuditLog.open({ database: db });
      const broker = new Broker({
        store,
        audit,
        tokens: config.tokens,
        hmacSecret: config.hmacSecret,
        ackedRetentionMs: config.ackedRetentionMs,
      });
      const address = await broker.listen({ host: config.host, port: config.port });
      const url = `ws://${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`;
      const shown = config.db.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
      if (flags.json) printJson({ listening: url, db: shown });
      else process.stdout.write(`storeroom bus: listening on ${url} (db ${shown})\n`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await broker.close();
      await db.close();
    });
}
