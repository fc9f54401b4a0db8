import { join } from "node:path";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply } from "fastify";
import { redactText } from "../internal/redact.js";
import { TenantKey, type TenantStore } from "../tenants/index.js";
import { actAsRequestedTenant } from "./act-as-requested-tenant.js";
import { authChallenge } from "./auth-challenge.js";
import { Cluster } from "./cluster.js";
import { sharedBusSecret } from "./cluster-secrets.js";
import { ConnectionDrain } from "./connection-drain.js";
import { loadConsoleAssets } from "./console/console-assets.js";
import { registerConsoleRoutes } from "./console/console-routes.js";
import { answerClientError, errorReply, HttpError } from "./error-reply.js";
import { closingHeader, servedByHeader } from "./forwarded-identity.js";
import { GatewayAuthenticator, stripIdentityHeaders } from "./gateway-authenticator.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import { jsonBodyRequired } from "./json-body.js";
import { MetricsHistory } from "./metrics-history.js";
import { OrgBuses } from "./org-buses.js";
import { readQueueDepths } from "./queue-depths.js";
import { enforceAuth } from "./request-context.js";
import { registerBusAdminRoutes } from "./routes/bus-admin-routes.js";
import { registerBusNameRoutes } from "./routes/bus-name-routes.js";
import { registerBusRoute } from "./routes/bus-route.js";
import { registerDeleteQueueRoutes } from "./routes/delete-queue-routes.js";
import { registerEventRoutes } from "./routes/event-routes.js";
import { registerHealthRoutes } from "./routes/health-routes.js";
import { registerInspectorRoutes } from "./routes/inspector-routes.js";
import { registerMetricsHistoryRoute } from "./routes/metrics-history-route.js";
import { registerStateRoutes } from "./routes/state-routes.js";
import { registerTenantRoutes } from "./routes/tenant-routes.js";
import { registerTokenRoutes } from "./routes/token-routes.js";
import { registerTusRoutes } from "./routes/tus-routes.js";
import { registerUploadRoutes } from "./routes/upload-routes.js";
import { readOrCreateSecret, readSecret } from "./secret-file.js";
import type { ResolvedServerOptions, ServerOptions } from "./server-config.js";
import { resolveServerOptions } from "./server-config.js";
import { ServerMetrics } from "./server-metrics.js";
import { loadServerPackages } from "./server-packages.js";
import { openServerParts } from "./server-parts.js";
import { serverWarning } from "./server-warning.js";
import { SharedSettings } from "./shared-settings.js";
import { SharedTokens } from "./shared-tokens.js";
import { TokenAuthenticator } from "./token-authenticator.js";
import { TokenStore } from "./token-store.js";

/** Longest URL path parameter in characters: a 512-byte name percent-encoded, with room to spare. */
const maxParamChars = 2048;

/** What {@link StoreroomServer.close} managed to do. `flushed` is true only when nothing was lost. */
export interface ShutdownReport {
  readonly flushed: boolean;
  /** One line per part that failed to close or flush. */
  readonly errors: readonly string[];
}

/** A running (or ready to listen) storeroom server. */
export interface StoreroomServer {
  /** The Fastify instance (routes, `inject()` for tests). */
  readonly app: FastifyInstance;
  readonly config: ResolvedServerOptions;
  readonly authenticator: Authenticator;
  readonly metrics: ServerMetrics;
  /** The in-process samples behind `GET /v1/metrics/history` (one every 10 s, the last hour). */
  readonly history: MetricsHistory;
  /** The tenant store behind the state routes (checkpoint, evict, inspect). */
  readonly tenants: TenantStore;
  /** This node's part in a cluster (PostgreSQL control database); `undefined` with SQLite. */
  readonly cluster: Cluster | undefined;
  /**
   * Token mode: the token store (`generated` holds the first-start token until
   * `acknowledgeGenerated()` confirms it was shown). `undefined` in gateway mode.
   */
  readonly tokens: TokenStore | undefined;
  /** Starts listening on `config.host:config.port` and returns the base URL, e.g. `http://127.0.0.1:7480`. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown: answer new requests (also on existing keep-alive sockets) with 503 and
   * `Connection: close`, end event streams, give clients up to `shutdownGraceMs` to close their
   * sockets, finish in-flight requests, stop the background jobs, checkpoint every dirty tenant,
   * close the stores. Never throws; idempotent.
   */
  close(): Promise<ShutdownReport>;
}

/**
 * Builds the server: opens the object store, the tenant store and the control database,
 * registers every route, and starts the background jobs. Call `listen()` to accept requests.
 *
 * @example
 * ```ts
 * import { createServer } from "storeroom/server";
 * const server = await createServer({ dataDir: "./.storeroom" });
 * console.log(await server.listen()); // http://127.0.0.1:7480
 * process.on("SIGTERM", async () => process.exit((await server.close()).flushed ? 0 : 1));
 * ```
 */
export async function createServer(input: ServerOptions = {}): Promise<StoreroomServer> {
  const config = resolveServerOptions(input);
  const { fastify: Fastify, promClient } = await loadServerPackages();
  const metrics = new ServerMetrics(promClient);
  const parts = await openServerParts(config, metrics);
  let tokens: TokenStore | undefined;
  let sharedTokens: SharedTokens | undefined;
  let cluster: Cluster | undefined;
  let busHmacSecret: string;
  try {
    const settings =
      config.cluster === undefined ? undefined : new SharedSettings({ database: parts.control, clock: config.clock });
    if (settings !== undefined && config.auth === "token") {
      sharedTokens = new SharedTokens({
        settings,
        clock: config.clock,
        onError: (err) => {
          metrics.backgroundFailures.inc({ job: "shared_tokens" });
          serverWarning("tokens", err);
        },
      });
    }
    const shared = sharedTokens;
    tokens =
      config.auth === "token"
        ? await TokenStore.open({
            path: config.tokensFile,
            clock: config.clock,
            // A node joining a cluster that shares tokens already gets them, not a first-start token of its own.
            bootstrap: shared === undefined || !(await shared.exists()),
            watch: true,
            onReloadError: (err) => {
              metrics.backgroundFailures.inc({ job: "tokens_reload" });
              serverWarning("tokens", err);
            },
            ...(shared === undefined ? {} : { afterWrite: () => shared.sync() }),
          })
        : undefined;
    if (tokens !== undefined) await sharedTokens?.attach(tokens);
    const localBusSecret = join(config.dataDir, "bus-hmac.key");
    if (settings !== undefined && parts.leases !== undefined && config.cluster !== undefined) {
      cluster = await Cluster.open({
        control: parts.control,
        settings,
        leases: parts.leases,
        clock: config.clock,
        advertise: config.cluster.advertise,
        publicUrl: config.cluster.publicUrl,
        forward: config.cluster.forward,
        onError: (err) => {
          metrics.backgroundFailures.inc({ job: "cluster_heartbeat" });
          serverWarning("cluster", err);
        },
      });
      busHmacSecret = await sharedBusSecret({
        settings,
        given: config.busHmacSecret,
        local: await readSecret(localBusSecret),
        localPath: localBusSecret,
        othersLive: cluster.nodes.othersLive().length > 0,
      });
    } else {
      busHmacSecret = config.busHmacSecret ?? (await readOrCreateSecret(localBusSecret));
    }
  } catch (err) {
    await sharedTokens?.close();
    tokens?.close();
    await parts.close();
    throw err;
  }
  const ownAuthenticator: Authenticator =
    tokens === undefined
      ? new GatewayAuthenticator({ secret: config.gatewaySecret ?? "", operatorRole: config.gatewayOperatorRole })
      : new TokenAuthenticator(tokens);
  const authenticator = cluster === undefined ? ownAuthenticator : cluster.authenticator(ownAuthenticator);
  const app = Fastify({
    logger: config.logger
      ? {
          // Request URLs and error messages can carry credentials (query tokens, connection strings).
          serializers: {
            req: (req) => ({ method: req.method, url: redactText(req.url), remoteAddress: req.ip }),
            err: (err) => ({ type: err.name, message: redactText(err.message), stack: redactText(err.stack ?? "") }),
          },
        }
      : false,
    bodyLimit: config.maxJsonBytes,
    // Names are up to 512 bytes, up to 3 URL characters each once encoded.
    routerOptions: { maxParamLength: maxParamChars },
    forceCloseConnections: "idle",
    // Closing is answered by our own hook (documented error shape, Connection: close).
    return503OnClosing: false,
    frameworkErrors: (err, _request, reply) => {
      const { status, body } = errorReply(err);
      return (reply as unknown as FastifyReply).code(status).type("application/json; charset=utf-8").send(body);
    },
    clientErrorHandler: answerClientError,
  });
  app.decorateRequest("identity", null);
  const drain = new ConnectionDrain(app.server);

  app.addHook("onRequest", async (request, reply) => {
    if (drain.draining) {
      // The request had no effect here: a node that forwarded it sends it again once the tenant moved.
      if (cluster !== undefined) reply.header(servedByHeader, cluster.id).header(closingHeader, "1");
      throw new HttpError(503, "CLOSED", "the server is shutting down");
    }
    const level = request.routeOptions.config.auth ?? "required";
    try {
      // Routes open to anyone never look at credentials, so a stale token cannot break a health check.
      request.identity = level === "none" ? null : authenticator.identify(request.headers);
    } finally {
      stripIdentityHeaders(request.headers);
    }
    enforceAuth(level, request.identity);
  });
  if (cluster !== undefined) {
    const routing = cluster;
    // After authentication: a tenant's request runs where the tenant is owned.
    app.addHook("onRequest", async (request, reply) => {
      await routing.route(request, reply);
      return reply.sent ? reply : undefined;
    });
    // A request served here after an owner that was shutting down refused it: its body was read on the way there.
    app.addHook("preParsing", async (request, _reply, payload) => {
      const sent = await routing.sentBody(request.raw);
      if (sent === undefined) return payload;
      if (sent === null) {
        throw new HttpError(503, "CLOSED", "the node serving this tenant was shutting down: send the request again");
      }
      return Object.assign(Readable.from([sent], { objectMode: false }), { receivedEncodedLength: sent.length });
    });
  }
  app.addHook("onSend", async (_request, reply) => {
    if (drain.draining) reply.header("connection", "close");
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    const labels = { method: request.method, route };
    metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.latency.observe(labels, reply.elapsedTime / 1000);
  });
  // Bodies are JSON or nothing, except where a scope takes raw bytes (state values, parts, tus).
  app.removeContentTypeParser("text/plain");
  app.setErrorHandler((err, request, reply) => {
    // Fastify's own refusal of a body type says only "Unsupported Media Type": name the route and the type.
    const unsupportedType = (err as { code?: unknown }).code === "FST_ERR_CTP_INVALID_MEDIA_TYPE";
    const { status, body } = errorReply(unsupportedType ? jsonBodyRequired(request) : err);
    if (status >= 500) request.log.error({ err }, "request failed");
    // Node has no reason phrase for 460 (it would send "unknown"); tus names it.
    if (status === 460) reply.raw.statusMessage = "Checksum Mismatch";
    const challenge =
      status === 401 ? authChallenge(authenticator.mode, request.headers.authorization !== undefined) : undefined;
    if (challenge !== undefined) reply.header("www-authenticate", challenge);
    // A body refused before its end (too large, a bad checksum): Node would read on whatever
    // the client still sends to keep the connection; answer and close it instead.
    if (!request.raw.complete) reply.header("connection", "close");
    return reply.code(status).type("application/json; charset=utf-8").send(body);
  });
  app.setNotFoundHandler({ preHandler: undefined }, (request, reply) => {
    const { status, body } = errorReply(
      new HttpError(404, "NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`),
    );
    return reply.code(status).send(body);
  });

  const streams = new Set<{ end(): void }>();

  const buses = new OrgBuses({
    database: config.database,
    dataDir: config.dataDir,
    hmacSecret: busHmacSecret,
    clock: config.clock,
    ackedRetentionMs: config.bus.ackedRetentionMs,
    pruneIntervalMs: config.bus.pruneIntervalMs,
    authorizeRegistration: (orgId, name, context) => {
      const identity = context as RequestIdentity;
      // The broker is the caller's org's, so this holds by construction; checked so a wiring mistake fails closed.
      return identity.orgId === orgId ? parts.peerNames.authorize(identity, name) : Promise.resolve(false);
    },
    onError: (err) => {
      metrics.backgroundFailures.inc({ job: "bus" });
      serverWarning("bus", err);
    },
  });

  parts.onLeaseLost((id) => {
    const key = TenantKey.parse(id);
    // The org's bus lives with its org tenant: its peers reconnect to the new owner.
    if (key.userId === undefined) buses.closeOrg(key.orgId).catch((err: unknown) => serverWarning("bus", err));
  });
  metrics.setSources({
    residentTenants: () => parts.tenants.stats.resident,
    replication: () => ({
      counters: parts.tenants.stats.replication,
      lag: parts.tenants.lag(),
      durability: parts.tenants.durability,
    }),
    queueDepths: async () => ({ ...(await readQueueDepths(parts, buses)) }),
    outboxLagMs: async () => (await parts.dispatcher.lag()).oldestAgeMs,
    sseStreams: () => streams.size,
    busPeers: () => buses.connectedPeerCount(),
    busAckedPruned: () => buses.prunedAcked(),
    ...(cluster === undefined ? {} : { cluster: () => (cluster as Cluster).readings() }),
  });
  const history = new MetricsHistory({
    metrics,
    clock: config.clock,
    replicationLagMs: () => parts.tenants.lag().ms,
    onError: (err) => {
      metrics.backgroundFailures.inc({ job: "metrics_history" });
      serverWarning("metrics history", err);
    },
  });
  history.start();

  // Upgraded sockets (bus peers) and event streams would keep server.close() waiting forever.
  let busCloseError: unknown;
  app.addHook("preClose", async () => {
    await buses.close().catch((err: unknown) => {
      busCloseError = err;
    });
  });

  registerHealthRoutes(app, { metrics });
  registerBusRoute(app, authenticator, buses, cluster);
  registerBusNameRoutes(app, parts.peerNames);
  registerBusAdminRoutes(app, buses);
  registerMetricsHistoryRoute(app, history);
  registerDeleteQueueRoutes(app, parts.deleteQueue);
  registerTokenRoutes(app, tokens);
  if (config.inspector) {
    registerConsoleRoutes(app, loadConsoleAssets());
    registerInspectorRoutes(app, parts, buses, config.clock, cluster);
  }
  registerTenantRoutes(app, parts);
  // An admin's `?tenant=` acts on a tenant of its org (the console browses tenants this way).
  await app.register(async (scope) => {
    scope.addHook("preHandler", actAsRequestedTenant);
    await registerUploadRoutes(scope, {
      uploads: parts.uploads,
      claims: parts.claims,
      deleteQueue: parts.deleteQueue,
      files: parts.files,
      ownerOf: (identity) => parts.tenantOf(identity).toString(),
      maxJsonBytes: config.maxJsonBytes,
    });
  });
  registerEventRoutes(app, {
    outbox: parts.outbox,
    ownerOf: (identity) => parts.tenantOf(identity).toString(),
    streams,
    pollMs: config.events.pollMs ?? 500,
  });
  await app.register(async (scope) =>
    registerTusRoutes(scope, {
      resumable: parts.resumable,
      ownerOf: (identity) => parts.tenantOf(identity).toString(),
      maxUploadSize: parts.uploads.maxUploadSize,
    }),
  );
  await app.register(async (scope) => {
    scope.addHook("preHandler", actAsRequestedTenant);
    await registerStateRoutes(scope, {
      states: {
        use: (identity, fn) => parts.useState(parts.tenantOf(identity), fn),
        pin: (identity) => parts.pinState(parts.tenantOf(identity)),
      },
      maxValueBytes: config.maxValueBytes,
      streams,
    });
  });

  let closing: Promise<ShutdownReport> | undefined;
  return {
    app,
    config,
    authenticator,
    metrics,
    history,
    tenants: parts.tenants,
    cluster,
    tokens,
    async listen() {
      const url = await app.listen({ host: config.host, port: config.port });
      await cluster?.listening(url);
      return url;
    },
    close() {
      closing ??= (async () => {
        drain.begin();
        await history.stop();
        for (const stream of streams) stream.end();
        await drain.waitForSockets(config.shutdownGraceMs);
        drain.closeIdle();
        const errors: string[] = [];
        try {
          await app.close();
        } catch (err) {
          errors.push(`http: ${(err as Error).message}`);
        }
        if (busCloseError !== undefined) errors.push(`bus: ${(busCloseError as Error).message}`);
        await sharedTokens?.close();
        tokens?.close();
        if (cluster !== undefined) {
          await cluster.close().catch((err: unknown) => errors.push(`cluster: ${(err as Error).message}`));
        }
        errors.push(...(await parts.close()));
        return { flushed: errors.length === 0, errors };
      })();
      return closing;
    },
  };
}
