import type { Command } from "commander";
import { InvalidArgumentError } from "../../errors.js";
import { redactText, redactUrl } from "../../internal/redact.js";
import type { ServerClusterOptions, ServerOptions, StoreroomServer } from "../../server/index.js";
import { parseAckedRetentionMs } from "../acked-retention.js";
import { ExitCode, printJson } from "../output.js";

interface ServeOptions {
  port?: string;
  host: string;
  data: string;
  objects?: string;
  database?: string;
  auth: string;
  gatewaySecret?: string;
  gatewayOperatorRole: boolean;
  busHmacSecret?: string;
  ackedRetentionMs?: string;
  busPruneIntervalMs?: string;
  allowPublicUploads?: boolean;
  webhook: string[];
  webhookSecret?: string;
  durability?: string;
  unsafeNoCas?: boolean;
  inspector: boolean;
  log?: boolean;
  json?: boolean;
  sqliteEngine?: string;
  advertise?: string;
  publicUrl?: string;
  forward?: string;
  leaseMs?: string;
}

/** `storeroom serve`: the multi-tenant HTTP + WebSocket server. */
export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Run the multi-tenant HTTP + WebSocket server (state, uploads, files, bus, metrics, admin console).")
    .option("--port <n>", "TCP port, default 7480 (env STOREROOM_PORT; 0 = any free port)", process.env.STOREROOM_PORT)
    .option("--host <addr>", "interface to bind (env STOREROOM_HOST)", process.env.STOREROOM_HOST ?? "127.0.0.1")
    .option("--data <dir>", "data directory (env STOREROOM_DATA)", process.env.STOREROOM_DATA ?? "./.storeroom")
    .option(
      "--objects <url>",
      "object store: file:///dir, s3://bucket?endpoint=..., memory: (env STOREROOM_OBJECTS)",
      process.env.STOREROOM_OBJECTS,
    )
    .option(
      "--database <url>",
      "control database: SQLite path or postgres://... (env STOREROOM_DATABASE)",
      process.env.STOREROOM_DATABASE,
    )
    .option("--auth <mode>", "identity: token | gateway (env STOREROOM_AUTH)", process.env.STOREROOM_AUTH ?? "token")
    .option(
      "--gateway-secret <secret>",
      "shared secret (>= 32 bytes) for gateway mode (env STOREROOM_GATEWAY_SECRET)",
      process.env.STOREROOM_GATEWAY_SECRET,
    )
    .option(
      "--gateway-operator-role",
      "gateway mode: accept X-Roles: operator, which sees every org (env STOREROOM_GATEWAY_OPERATOR_ROLE=1)",
      process.env.STOREROOM_GATEWAY_OPERATOR_ROLE === "1",
    )
    .option(
      "--bus-hmac-secret <secret>",
      "HMAC secret (>= 32 bytes) bus peers sign with (env STOREROOM_BUS_HMAC_SECRET; default generated into <data>/bus-hmac.key)",
      process.env.STOREROOM_BUS_HMAC_SECRET,
    )
    .option(
      "--acked-retention-ms <ms>",
      'every org bus keeps an acked message this long for duplicate detection, then prunes it; "infinity" keeps them (env STOREROOM_BUS_ACKED_RETENTION_MS; default 3600000)',
      process.env.STOREROOM_BUS_ACKED_RETENTION_MS,
    )
    .option(
      "--bus-prune-interval-ms <ms>",
      "how often each org bus deletes the acked messages past their retention; 0 never (env STOREROOM_BUS_PRUNE_INTERVAL_MS; default 60000)",
      process.env.STOREROOM_BUS_PRUNE_INTERVAL_MS,
    )
    .option(
      "--sqlite-engine <engine>",
      "SQLite driver of every database the server opens: node:sqlite | better-sqlite3 (env STOREROOM_SQLITE_ENGINE; default node:sqlite on Node 24.15+, else better-sqlite3 when installed)",
    )
    .option("--allow-public-uploads", "allow uploads with public: true (served anonymously under /v1/files/pub/)")
    .option(
      "--webhook <url>",
      "POST every upload event to this URL, signed with HMAC-SHA256 (repeatable)",
      (url: string, all: string[]) => [...all, url],
      [] as string[],
    )
    .option(
      "--webhook-secret <secret>",
      "webhook signing key, >= 32 bytes (env STOREROOM_WEBHOOK_SECRET; default generated into <data>/webhook-hmac.key)",
      process.env.STOREROOM_WEBHOOK_SECRET,
    )
    .option(
      "--durability <mode>",
      "tenant writes: async (acknowledged at local commit, published within 1 s) | sync (acknowledged once published) (env STOREROOM_DURABILITY)",
      process.env.STOREROOM_DURABILITY ?? "async",
    )
    .option(
      "--unsafe-no-cas",
      "start even if the object store ignores conditional writes (concurrent servers then overwrite each other silently)",
    )
    .option(
      "--advertise <url>",
      "several nodes on one PostgreSQL --database: the internal URL other nodes forward this node's tenants' requests to (env STOREROOM_ADVERTISE; default the URL it listens on)",
      process.env.STOREROOM_ADVERTISE,
    )
    .option(
      "--public-url <url>",
      "several nodes: the URL clients reach this node at, for --forward redirect (env STOREROOM_PUBLIC_URL; default --advertise)",
      process.env.STOREROOM_PUBLIC_URL,
    )
    .option(
      "--forward <mode>",
      "several nodes: a request for a tenant another node owns is proxied there (proxy) or answered 307 with its public URL (redirect) (env STOREROOM_FORWARD)",
      process.env.STOREROOM_FORWARD,
    )
    .option(
      "--lease-ms <n>",
      "several nodes: how long a tenant's ownership lease lasts unless renewed, the takeover time after a node dies (env STOREROOM_LEASE_MS; default 15000)",
      process.env.STOREROOM_LEASE_MS,
    )
    .option("--no-inspector", "do not serve the admin console at / (nor /v1/inspector)")
    .option("--log", "log every request as a JSON line")
    .option("--json", "print one JSON line when listening and one at shutdown instead of text")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  storeroom serve                                  # embedded: ./.storeroom, 127.0.0.1:7480, token auth",
        "  storeroom serve --port 8080 --data /var/lib/storeroom",
        "  storeroom serve --sqlite-engine better-sqlite3",
        "  storeroom serve --objects 's3://tenants?endpoint=http://127.0.0.1:9000&region=us-east-1' \\",
        '    --database postgres://app@db/storeroom --auth gateway --gateway-secret "$SECRET"',
        "",
        "Exit codes: 0 after a clean shutdown (every tenant flushed), 1 when a flush failed, 2 on a startup error.",
      ].join("\n"),
    )
    .action(async (opts: ServeOptions) => {
      const { defaultSqliteEngine, parseSqliteEngine, SQLITE_ENGINE_ENV } = await import("../../sql/index.js");
      // Every database the server opens (control, tenants, org buses) takes the process default.
      if (opts.sqliteEngine !== undefined) {
        process.env[SQLITE_ENGINE_ENV] = parseSqliteEngine(opts.sqliteEngine, "--sqlite-engine");
      }
      const sqliteEngine = defaultSqliteEngine();
      const { createServer } = await import("../../server/index.js");
      const server = await createServer({
        ...(opts.port === undefined ? {} : { port: parsePort(opts.port) }),
        host: opts.host,
        dataDir: opts.data,
        objects: opts.objects,
        database: opts.database,
        auth: opts.auth as "token" | "gateway",
        gatewaySecret: opts.gatewaySecret,
        gatewayOperatorRole: opts.gatewayOperatorRole,
        busHmacSecret: opts.busHmacSecret,
        bus: busOptions(opts),
        uploads: { allowPublic: opts.allowPublicUploads === true },
        events: {
          webhooks: opts.webhook,
          ...(opts.webhookSecret === undefined ? {} : { secret: opts.webhookSecret }),
        },
        tenants: { durability: parseDurability(opts.durability) },
        unsafeNoCas: opts.unsafeNoCas === true,
        inspector: opts.inspector,
        logger: opts.log === true,
        ...clusterOptions(opts),
      });
      // Handlers go in before listening, so a signal that arrives during start-up still flushes.
      let stopping: Promise<void> | undefined;
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          stopping ??= (async () => {
            const report = await server.close();
            const errors = report.errors.map(redactText);
            if (opts.json) printJson({ event: "stopped", signal, flushed: report.flushed, errors });
            else {
              process.stderr.write(
                `storeroom: ${signal}: ${report.flushed ? "flushed and closed" : "closed with errors"}\n`,
              );
              for (const e of errors) process.stderr.write(`  ${e}\n`);
            }
            process.exitCode = report.flushed ? ExitCode.ok : ExitCode.finding;
            resolve();
          })();
        };
        // `on`, not `once`: a repeated signal while flushing must not kill the process half-way.
        process.on("SIGTERM", () => stop("SIGTERM"));
        process.on("SIGINT", () => stop("SIGINT"));
      });
      let url: string;
      try {
        url = await server.listen();
      } catch (err) {
        await server.close();
        throw err;
      }
      if (stopping === undefined) await announce(server, url, sqliteEngine, opts.json === true);
      await stopped;
    });
}

function clusterOptions(opts: ServeOptions): { cluster?: ServerClusterOptions } {
  const cluster: ServerClusterOptions = {
    ...(opts.advertise === undefined ? {} : { advertise: opts.advertise }),
    ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
    ...(opts.forward === undefined ? {} : { forward: opts.forward as "proxy" | "redirect" }),
    ...(opts.leaseMs === undefined ? {} : { leaseMs: parseLeaseMs(opts.leaseMs) }),
  };
  return Object.keys(cluster).length === 0 ? {} : { cluster };
}

function busOptions(opts: ServeOptions): NonNullable<ServerOptions["bus"]> {
  const interval = opts.busPruneIntervalMs;
  if (interval !== undefined && !/^\d{1,10}$/.test(interval)) {
    throw new InvalidArgumentError(
      `--bus-prune-interval-ms must be a whole number of ms, got "${interval}" (or STOREROOM_BUS_PRUNE_INTERVAL_MS)`,
      { op: "cli.serve" },
    );
  }
  return {
    ...(opts.ackedRetentionMs === undefined
      ? {}
      : {
          ackedRetentionMs: parseAckedRetentionMs(
            opts.ackedRetentionMs,
            "--acked-retention-ms",
            "STOREROOM_BUS_ACKED_RETENTION_MS",
          ),
        }),
    ...(interval === undefined ? {} : { pruneIntervalMs: Number(interval) }),
  };
}

function parseLeaseMs(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError(`--lease-ms must be a positive integer, got ${value}`, { op: "cli.serve" });
  }
  return Number(value);
}

async function announce(server: StoreroomServer, url: string, sqliteEngine: string, json: boolean): Promise<void> {
  const { config } = server;
  const generated = server.tokens?.generated;
  const objects = typeof config.objects === "string" ? redactUrl(config.objects) : "(object store instance)";
  if (json) {
    printJson({
      event: "listening",
      url,
      auth: config.auth,
      dataDir: config.dataDir,
      objects,
      database: redactUrl(config.database),
      sqliteEngine,
      inspector: config.inspector,
      tokensFile: config.auth === "token" ? config.tokensFile : undefined,
      generatedToken: generated?.token,
      generatedTokenFromEarlierStart: generated?.fromEarlierStart,
    });
  } else {
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`storeroom listening on ${url}`);
    out(`  data      ${config.dataDir}`);
    out(`  objects   ${objects}`);
    out(`  database  ${redactUrl(config.database)}`);
    out(`  sqlite    ${sqliteEngine}`);
    if (config.auth === "gateway") {
      out("  auth      gateway: send X-Org-Id, X-User-Id, X-Roles with X-Storeroom-Gateway-Secret");
    } else {
      out(`  auth      bearer tokens from ${config.tokensFile} (manage: storeroom tokens add|ls|revoke)`);
      if (generated !== undefined) {
        const when = generated.fromEarlierStart ? "generated by an earlier start that did not finish" : "generated now";
        out(`  token     ${generated.token}   (${when}: org "default", role operator; shown once)`);
        out(`  try       curl -H 'Authorization: Bearer ${generated.token}' ${url}/v1/state`);
      }
    }
    if (config.inspector) out(`  console   ${url}/${generated === undefined ? "" : `#token=${generated.token}`}`);
  }
  // Shown now: later starts no longer repeat it.
  await server.tokens?.acknowledgeGenerated();
}

function parsePort(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n > 65535) throw new Error(`invalid port ${raw}`);
  return n;
}

function parseDurability(value: string | undefined): "async" | "sync" {
  if (value === undefined || value === "async" || value === "sync") return value ?? "async";
  throw new InvalidArgumentError(`--durability must be async or sync, got ${value}`, { op: "cli.serve" });
}
