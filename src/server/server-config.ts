import { resolve } from "node:path";
import { checkIntervalMs } from "../background-job.js";
import type { Clock } from "../clock.js";
import { systemClock } from "../clock.js";
import { InvalidArgumentError } from "../errors.js";
import {
  booleanOption,
  clockOption,
  nonEmptyString,
  nonNegativeInteger,
  objectStoreOption,
  positiveInteger,
} from "../internal/option-checks.js";
import type { ObjectStore } from "../objects/index.js";
import type { TenantStoreOptions } from "../tenants/index.js";
import { isPostgresUrl } from "./control-database.js";

/** Default port of `storeroom serve` (and `STOREROOM_PORT`). */
export const defaultPort = 7480;

/**
 * Configuration of {@link createServer}. Every field has an embedded default, so `{}` runs a
 * self-contained server under `./.storeroom/`.
 *
 * @example
 * ```ts
 * const server = await createServer({ dataDir: "./.storeroom", port: 7480 });
 * await server.listen();
 * ```
 */
export interface ServerOptions {
  /** Interface to bind. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 picks a free one. Default {@link defaultPort} (7480). */
  port?: number;
  /** Data directory: `objects/`, `cache/`, `control.db`, `tokens.json`. Default `./.storeroom`. */
  dataDir?: string;
  /**
   * Object store URL (`file:///path`, `s3://bucket?endpoint=...`, `memory:`; see the objects
   * module's `openObjectStore`) or an open store (the server then does not close it).
   * Default `file://<dataDir>/objects`.
   */
  objects?: string | ObjectStore;
  /** Control database (uploads + bus tables): a SQLite path or `postgres://...`. Default `<dataDir>/control.db`. */
  database?: string;
  /** Identity mode. Default `"token"`. */
  auth?: "token" | "gateway";
  /** Shared secret (>= 32 bytes) the gateway sends in `X-Storeroom-Gateway-Secret`. Required in gateway mode. */
  gatewaySecret?: string;
  /** Gateway mode: accept the `operator` role (every org) in `X-Roles`. Default false (such requests get 403). */
  gatewayOperatorRole?: boolean;
  /** HMAC secret (>= 32 bytes) bus peers sign envelopes with. Default: generated once into `<dataDir>/bus-hmac.key`. */
  busHmacSecret?: string;
  /** Tokens file for token mode. Default `<dataDir>/tokens.json` (generated on first start). */
  tokensFile?: string;
  /** Serve the admin console at `GET /` (and its data at `GET /v1/inspector`). Default true. */
  inspector?: boolean;
  /** Largest state value accepted by `PUT /v1/state/:group/:key`, bytes. Default 1 MiB. */
  maxValueBytes?: number;
  /** Largest JSON request body, bytes. Default 64 KiB. */
  maxJsonBytes?: number;
  /**
   * Tenant cache and replication tuning, passed to the tenant store (see `TenantStoreOptions`):
   * `durability` `"async"` (default) acknowledges a write at local commit and publishes it
   * within `syncIntervalMs`; `"sync"` acknowledges it once published.
   */
  tenants?: Pick<
    TenantStoreOptions,
    | "lruSize"
    | "idleTtlMs"
    | "durability"
    | "syncIntervalMs"
    | "snapshotFraction"
    | "snapshotIntervalMs"
    | "retentionMs"
    | "diskBudgetBytes"
  >;
  /** Start even though the object store ignores conditional writes (logged loudly; concurrent servers then overwrite each other). Default false. */
  unsafeNoCas?: boolean;
  /**
   * Upload rules passed to the upload service: public (`pub/`, served anonymously) uploads are
   * off by default. `appendLeaseMs` (default 10 000): how long a tus upload stays held by a
   * server process that died while appending to it.
   */
  uploads?: {
    allowPublic?: boolean;
    maxUploadSize?: number;
    maxPendingClaims?: number;
    claimTtlMs?: number;
    appendLeaseMs?: number;
  };
  /**
   * Delivery of upload events (the outbox): `webhooks` get every event as a signed POST
   * (`secret`, default generated once into `<dataDir>/webhook-hmac.key`); delivered events
   * stay `retentionMs` (default 24 h) for `GET /v1/events` to resume; an event failing
   * `maxAttempts` times (default 10) is dead-lettered; `dispatchMs` (default 1000) paces the
   * dispatcher and `pollMs` (default 500) the event streams.
   */
  events?: {
    webhooks?: readonly string[];
    secret?: string;
    retentionMs?: number;
    maxAttempts?: number;
    dispatchMs?: number;
    pollMs?: number;
  };
  /**
   * The org buses (every broker the server opens): an acked message is kept `ackedRetentionMs`
   * (default 1 hour; `Infinity` keeps it) so a re-sent id is still recognised as a duplicate,
   * then deleted by a prune job that runs every `pruneIntervalMs` (default 60 s; `0` disables it).
   */
  bus?: { ackedRetentionMs?: number; pruneIntervalMs?: number };
  /** Background job intervals in ms (claim sweeper, delete worker, state purge); `0` disables one. Defaults: 5 min, 5 min, 60 s. */
  intervals?: { sweepMs?: number; deleteMs?: number; purgeMs?: number };
  /**
   * On close, how long clients get to close their keep-alive sockets (each request meanwhile is
   * answered 503 with `Connection: close`) before the rest are closed, ms. Default 1000.
   */
  shutdownGraceMs?: number;
  /** Log requests as JSON lines to stdout. Default false. */
  logger?: boolean;
  /**
   * Several nodes on one PostgreSQL control database and one object store (only with
   * `database: "postgres://..."`, where it is always on): each tenant is owned by one node at a
   * time under a lease, and requests for it are forwarded to its owner. See docs/server.md,
   * "Several nodes".
   */
  cluster?: ServerClusterOptions;
  /** Time source for TTLs, leases and workers. Default the system clock. */
  clock?: Clock;
}

/** How a node takes part in a cluster (`ServerOptions.cluster`). */
export interface ServerClusterOptions {
  /**
   * The internal URL other nodes forward requests to, e.g. `http://10.0.0.5:7480`. Default the
   * URL the server listens on (required when `host` is a wildcard address like `0.0.0.0`).
   */
  advertise?: string;
  /** The URL clients reach this node at, for `forward: "redirect"`. Default `advertise`. */
  publicUrl?: string;
  /**
   * `"proxy"` (default): a request for a tenant another node owns is streamed to the owner and
   * its answer back. `"redirect"`: it is answered `307` with the owner's public URL.
   */
  forward?: "proxy" | "redirect";
  /** How long a tenant lease lasts unless renewed, ms: the takeover time after a node dies. Default 15000. */
  leaseMs?: number;
}

/** {@link ServerOptions} with every default applied. */
export interface ResolvedServerOptions {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly objects: string | ObjectStore;
  readonly database: string;
  readonly auth: "token" | "gateway";
  readonly gatewaySecret: string | undefined;
  readonly gatewayOperatorRole: boolean;
  readonly tokensFile: string;
  readonly busHmacSecret: string | undefined;
  readonly inspector: boolean;
  readonly maxValueBytes: number;
  readonly maxJsonBytes: number;
  readonly tenants: NonNullable<ServerOptions["tenants"]>;
  readonly unsafeNoCas: boolean;
  readonly uploads: NonNullable<ServerOptions["uploads"]>;
  readonly events: NonNullable<ServerOptions["events"]>;
  readonly intervals: Required<NonNullable<ServerOptions["intervals"]>>;
  readonly bus: Readonly<Required<NonNullable<ServerOptions["bus"]>>>;
  readonly shutdownGraceMs: number;
  readonly logger: boolean;
  readonly clock: Clock;
  /** Set when the control database is PostgreSQL (several nodes may share it); `undefined` with SQLite. */
  readonly cluster:
    | Readonly<{
        advertise: string | undefined;
        publicUrl: string | undefined;
        forward: "proxy" | "redirect";
        leaseMs: number;
      }>
    | undefined;
}

/** Applies defaults and validates; a bad value -> InvalidArgumentError naming the field. */
export function resolveServerOptions(config: ServerOptions = {}): ResolvedServerOptions {
  if (config === null || typeof config !== "object") throw invalid("server options must be an object");
  const dataDir = resolve(optionalPath(config.dataDir, "dataDir") ?? "./.storeroom");
  const port = config.port ?? defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid("port must be an integer 0..65535");
  const auth = config.auth ?? "token";
  if (auth !== "token" && auth !== "gateway") throw invalid(`auth must be "token" or "gateway", got ${String(auth)}`);
  if (auth === "gateway" && !config.gatewaySecret)
    throw invalid("gatewaySecret is required: gateway mode needs a gateway secret (--gateway-secret)");
  secretOption(config.gatewaySecret, "gatewaySecret");
  secretOption(config.busHmacSecret, "busHmacSecret");
  const maxValueBytes = positiveInteger(config.maxValueBytes, "maxValueBytes", op, 1024 * 1024);
  const maxJsonBytes = positiveInteger(config.maxJsonBytes, "maxJsonBytes", op, 64 * 1024);
  const shutdownGraceMs = nonNegativeInteger(config.shutdownGraceMs, "shutdownGraceMs", op, 1000);
  const host = config.host === undefined ? "127.0.0.1" : nonEmptyString(config.host, "host", op);
  const database = optionalPath(config.database, "database") ?? resolve(dataDir, "control.db");
  const objects =
    config.objects === undefined || typeof config.objects === "string"
      ? (optionalPath(config.objects, "objects") ?? `file://${resolve(dataDir, "objects")}`)
      : objectStoreOption(config.objects, "objects", op);
  return Object.freeze({
    host,
    port,
    dataDir,
    objects,
    database,
    auth,
    gatewaySecret: config.gatewaySecret,
    gatewayOperatorRole: booleanOption(config.gatewayOperatorRole, "gatewayOperatorRole", op, false),
    tokensFile: optionalPath(config.tokensFile, "tokensFile") ?? resolve(dataDir, "tokens.json"),
    busHmacSecret: config.busHmacSecret,
    inspector: booleanOption(config.inspector, "inspector", op, true),
    maxValueBytes,
    maxJsonBytes,
    tenants: checkTenants(config.tenants),
    unsafeNoCas: booleanOption(config.unsafeNoCas, "unsafeNoCas", op, false),
    uploads: checkUploads(config.uploads ?? {}),
    events: resolveEvents(config.events),
    intervals: {
      sweepMs: checkIntervalMs(config.intervals?.sweepMs, "intervals.sweepMs", op, 5 * 60_000),
      deleteMs: checkIntervalMs(config.intervals?.deleteMs, "intervals.deleteMs", op, 5 * 60_000),
      purgeMs: checkIntervalMs(config.intervals?.purgeMs, "intervals.purgeMs", op, 60_000),
    },
    bus: resolveBus(config.bus),
    shutdownGraceMs,
    logger: booleanOption(config.logger, "logger", op, false),
    clock: clockOption<Clock>(config.clock, op, systemClock),
    cluster: resolveCluster(config.cluster, database, host),
  });
}

function resolveCluster(
  cluster: ServerClusterOptions | undefined,
  database: string,
  host: string,
): ResolvedServerOptions["cluster"] {
  if (cluster !== undefined && (cluster === null || typeof cluster !== "object")) {
    throw invalid("cluster must be an object");
  }
  if (!isPostgresUrl(database)) {
    if (cluster !== undefined && Object.values(cluster).some((v) => v !== undefined)) {
      throw invalid("cluster options need a PostgreSQL control database (--database postgres://...)");
    }
    return undefined;
  }
  const options = cluster ?? {};
  for (const name of ["advertise", "publicUrl"] as const) {
    const url = options[name];
    if (url !== undefined && (typeof url !== "string" || !isHttpUrl(url)))
      throw invalid(`cluster.${name} must be an http(s) URL, got ${url}`);
  }
  if (options.advertise === undefined && (host === "0.0.0.0" || host === "::")) {
    throw invalid(
      `cluster.advertise (--advertise) is required when listening on ${host}: other nodes need an address to forward to`,
    );
  }
  const forward = options.forward ?? "proxy";
  if (forward !== "proxy" && forward !== "redirect") {
    throw invalid(`cluster.forward must be "proxy" or "redirect", got ${String(forward)}`);
  }
  return Object.freeze({
    advertise: options.advertise?.replace(/\/+$/, ""),
    publicUrl: options.publicUrl?.replace(/\/+$/, ""),
    forward,
    leaseMs: positiveInteger(options.leaseMs, "cluster.leaseMs", op, 15_000),
  });
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

const op = "server.config";

/** Checked here, before anything opens, so a bad value never leaves half a server behind. */
function checkUploads(uploads: NonNullable<ServerOptions["uploads"]>): NonNullable<ServerOptions["uploads"]> {
  if (uploads === null || typeof uploads !== "object") throw invalid("uploads must be an object");
  booleanOption(uploads.allowPublic, "uploads.allowPublic", op, false);
  for (const name of ["maxUploadSize", "maxPendingClaims", "claimTtlMs", "appendLeaseMs"] as const) {
    positiveInteger(uploads[name], `uploads.${name}`, op, 1);
  }
  return { ...uploads };
}

function resolveEvents(events: ServerOptions["events"] = {}): NonNullable<ServerOptions["events"]> {
  if (events === null || typeof events !== "object") throw invalid("events must be an object");
  if (events.webhooks !== undefined && !Array.isArray(events.webhooks)) {
    throw invalid("events.webhooks must be an array of http(s) URLs");
  }
  for (const url of events.webhooks ?? []) {
    let parsed: URL | undefined;
    try {
      parsed = typeof url === "string" ? new URL(url) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      throw invalid(`webhooks must be http(s) URLs, got ${url}`);
    }
  }
  secretOption(events.secret, "events.secret");
  for (const name of ["retentionMs", "maxAttempts", "dispatchMs", "pollMs"] as const) {
    positiveInteger(events[name], `events.${name}`, op, 1);
  }
  return { ...events, webhooks: [...new Set(events.webhooks ?? [])] };
}

function resolveBus(bus: ServerOptions["bus"] = {}): ResolvedServerOptions["bus"] {
  if (bus === null || typeof bus !== "object") throw invalid("bus must be an object");
  const ackedRetentionMs = bus.ackedRetentionMs ?? 3_600_000;
  if (typeof ackedRetentionMs !== "number" || Number.isNaN(ackedRetentionMs) || ackedRetentionMs < 0) {
    throw invalid(`bus.ackedRetentionMs must be a non-negative number of ms, got ${String(ackedRetentionMs)}`);
  }
  const pruneIntervalMs = checkIntervalMs(bus.pruneIntervalMs, "bus.pruneIntervalMs", op, 60_000);
  return Object.freeze({ ackedRetentionMs, pruneIntervalMs });
}

/** A path or URL option: `undefined` or a non-empty string (`""` would silently mean the working directory). */
function optionalPath(value: string | undefined, name: string): string | undefined {
  return value === undefined ? undefined : nonEmptyString(value, name, op);
}

/** A shared secret option: `undefined` or a string of at least 32 bytes. */
function secretOption(value: unknown, name: string): void {
  if (value !== undefined && (typeof value !== "string" || Buffer.byteLength(value) < 32)) {
    throw invalid(`${name} must be a string of at least 32 bytes`);
  }
}

/** The tenant store's tunables, checked like {@link TenantStore.open} does but before anything opens. */
function checkTenants(tenants: ServerOptions["tenants"]): NonNullable<ServerOptions["tenants"]> {
  if (tenants === undefined) return {};
  if (tenants === null || typeof tenants !== "object") throw invalid("tenants must be an object");
  positiveInteger(tenants.lruSize, "tenants.lruSize", op, 1);
  const durability = tenants.durability;
  if (durability !== undefined && durability !== "async" && durability !== "sync") {
    throw invalid(`tenants.durability must be "async" or "sync", got ${String(durability)}`);
  }
  for (const name of [
    "idleTtlMs",
    "syncIntervalMs",
    "snapshotFraction",
    "snapshotIntervalMs",
    "retentionMs",
    "diskBudgetBytes",
  ] as const) {
    const value = tenants[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) {
      throw invalid(`tenants.${name} must be a number >= 0, got ${String(value)}`);
    }
  }
  return { ...tenants };
}

function invalid(message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { op });
}

/** @deprecated Renamed {@link ServerOptions}. */
export type ServerConfig = ServerOptions;
/** @deprecated Renamed {@link ResolvedServerOptions}. */
export type ResolvedServerConfig = ResolvedServerOptions;
/** @deprecated Renamed {@link resolveServerOptions}. */
export const resolveServerConfig = resolveServerOptions;
