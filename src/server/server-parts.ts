import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BackgroundJob } from "../background-job.js";
import type { ObjectStore } from "../objects/index.js";
import { openObjectStore } from "../objects/index.js";
import type { Database } from "../sql/index.js";
import { StateStore } from "../state/index.js";
import { readWriterId, TenantKey, TenantLeases, TenantStore } from "../tenants/index.js";
import {
  ClaimStore,
  ClaimSweeper,
  DeleteQueue,
  DeleteWorker,
  Outbox,
  OutboxDispatcher,
  ResumableUploads,
  UploadService,
} from "../uploads/index.js";
import { migrateControlDatabase, openControlDatabase } from "./control-database.js";
import type { RequestIdentity } from "./identity.js";
import { tenantKeyOf } from "./identity-policy.js";
import { PeerNames } from "./peer-names.js";
import { readOrCreateSecret } from "./secret-file.js";
import type { ResolvedServerOptions } from "./server-config.js";
import type { ServerMetrics } from "./server-metrics.js";
import { serverWarning } from "./server-warning.js";
import { TenantStateCache } from "./tenant-state-cache.js";
import { WebhookSink } from "./webhook-sink.js";

/** Everything the routes and background jobs use, opened from one config. */
export interface ServerParts {
  readonly objects: ObjectStore;
  /** Where uploads land (the same store; keys under `pub/` and `priv/`). */
  readonly files: ObjectStore;
  readonly tenants: TenantStore;
  /** Tenant ownership leases when the control database is shared by several nodes (PostgreSQL); else `undefined`. */
  readonly leases: TenantLeases | undefined;
  readonly control: Database;
  readonly deleteQueue: DeleteQueue;
  readonly claims: ClaimStore;
  /** Who owns each bus peer name (control database). */
  readonly peerNames: PeerNames;
  readonly uploads: UploadService;
  /** The upload events table (read by `GET /v1/events`). */
  readonly outbox: Outbox;
  /** Delivers upload events to the configured webhooks and purges delivered ones. */
  readonly dispatcher: OutboxDispatcher;
  /** Offset-addressed uploads on the same claims (the tus endpoint). */
  readonly resumable: ResumableUploads;
  /** The caller's tenant: user scope when the identity has a user id, else org scope. Validated. */
  tenantOf(identity: RequestIdentity): TenantKey;
  /** Runs `fn` on the tenant's state store (cached; see {@link TenantStateCache}), kept open until `fn` settles. */
  useState<T>(key: TenantKey, fn: (state: StateStore) => Promise<T>): Promise<T>;
  /** Same, kept cached until `release()` (for event streams). */
  pinState(key: TenantKey): Promise<{ state: StateStore; release: () => void }>;
  /** Calls `fn` with each tenant id whose lease this node lost to another node (after the tenant was let go here). */
  onLeaseLost(fn: (tenantId: string) => void): void;
  /** Tenant ids (`org/org`, `org/users/user`) used through the state routes since start (bounded by the cache). */
  cachedTenantIds(): string[];
  /** Stops background jobs, closes state stores, checkpoints tenants, closes stores; one line per failure. */
  close(): Promise<string[]>;
}

/** Opens the object store, tenant store, control database and starts the background jobs. */
export async function openServerParts(config: ResolvedServerOptions, metrics: ServerMetrics): Promise<ServerParts> {
  const { clock } = config;
  const ownsObjects = typeof config.objects === "string";
  const objects = typeof config.objects === "string" ? await openObjectStore(config.objects) : config.objects;
  const control = await openControlDatabase(config.database, clock);
  try {
    await migrateControlDatabase(control);
  } catch (err) {
    await control.close();
    if (ownsObjects) await objects.close();
    throw err;
  }
  // Tenant databases (`<org>/...`) and uploaded files (`pub/`, `priv/`) share the store's key
  // space, so the standalone `tenants` and `uploads` commands work on a server's store as is;
  // the org ids that would overlap are reserved (see tenantOf).
  const files = objects;
  const cacheRoot = join(config.dataDir, "cache");
  const lostHandlers: ((tenantId: string) => void)[] = [];
  let tenants: TenantStore;
  let leases: TenantLeases | undefined;
  try {
    if (config.cluster !== undefined) {
      mkdirSync(cacheRoot, { recursive: true, mode: 0o700 });
      leases = await TenantLeases.open({
        database: control,
        holder: readWriterId(cacheRoot),
        leaseMs: config.cluster.leaseMs,
        clock,
        migrate: false,
        onLost: (id) => {
          for (const fn of lostHandlers) fn(id);
        },
        onError: (err) => {
          metrics.backgroundFailures.inc({ job: "tenant_leases" });
          serverWarning("tenant leases", err);
        },
      });
    }
    tenants = await TenantStore.open({
      objectStore: objects,
      cacheRoot,
      clock,
      ...(leases === undefined ? {} : { ownership: leases }),
      ...config.tenants,
      unsafeNoCas: config.unsafeNoCas,
      onError: (error, key) => {
        metrics.checkpointFailures.inc();
        serverWarning(key === undefined ? "tenant store" : `tenant ${key}`, error);
      },
      onShipped: (event) => metrics.shipped(event),
    });
  } catch (err) {
    await leases?.close().catch(() => undefined);
    await control.close();
    if (ownsObjects) await objects.close();
    throw err;
  }
  const states = new TenantStateCache<StateStore>(config.tenants.lruSize ?? 1000);
  // A lease lost to another node (this one was paused or cut off past its lease): stop serving the tenant here.
  lostHandlers.push((id) => {
    void states.drop(id);
    tenants.evict(TenantKey.parse(id)).catch((err: unknown) => serverWarning(`tenant ${id}`, err));
  });
  const onError = (job: string) => (err: unknown) => {
    metrics.backgroundFailures.inc({ job });
    serverWarning(job, err);
  };
  const deleteQueue = new DeleteQueue({ database: control, clock });
  const claims = new ClaimStore({ database: control, clock });
  const uploads = await UploadService.open({
    migrate: false,
    database: control,
    objects: files,
    clock,
    allowPublicUploads: config.uploads.allowPublic === true,
    ...(config.uploads.maxUploadSize === undefined ? {} : { maxUploadSize: config.uploads.maxUploadSize }),
    ...(config.uploads.maxPendingClaims === undefined ? {} : { maxPendingClaims: config.uploads.maxPendingClaims }),
    ...(config.uploads.claimTtlMs === undefined ? {} : { claimTtlMs: config.uploads.claimTtlMs }),
  });
  const resumable = new ResumableUploads({
    database: control,
    objects: files,
    uploads,
    clock,
    ...(config.uploads.appendLeaseMs === undefined ? {} : { leaseMs: config.uploads.appendLeaseMs }),
  });
  const webhooks = config.events.webhooks ?? [];
  const webhookSecret =
    webhooks.length === 0
      ? ""
      : (config.events.secret ?? (await readOrCreateSecret(join(config.dataDir, "webhook-hmac.key"))));
  const dispatcher = new OutboxDispatcher({
    database: control,
    clock,
    sinks: webhooks.map((url) => new WebhookSink({ url, secret: webhookSecret })),
    intervalMs: config.events.dispatchMs ?? 1_000,
    ...(config.events.retentionMs === undefined ? {} : { retentionMs: config.events.retentionMs }),
    ...(config.events.maxAttempts === undefined ? {} : { maxAttempts: config.events.maxAttempts }),
    onError: onError("outbox_dispatcher"),
    onFailure: (_event, _error, dead, sink) =>
      metrics.outboxFailures.inc({ outcome: dead ? "dead_letter" : "retry", sink }),
    onDelivered: (_event, _lagMs, sink) => metrics.outboxDelivered.inc({ sink }),
  });
  const sweeper = new ClaimSweeper({
    database: control,
    objects: files,
    clock,
    intervalMs: config.intervals.sweepMs,
    onError: onError("claim_sweeper"),
  });
  const deleteWorker = new DeleteWorker({
    database: control,
    objects: files,
    clock,
    queue: deleteQueue,
    intervalMs: config.intervals.deleteMs,
    onError: onError("delete_worker"),
  });
  sweeper.start();
  deleteWorker.start();
  dispatcher.start();
  const purgeFailed = onError("state_purge");
  // One purge job for every cached tenant instead of a timer per state store.
  const purge = new BackgroundJob({
    name: "state purge",
    intervalMs: config.intervals.purgeMs,
    clock,
    onError: purgeFailed,
    run: async () => {
      const r = await states.forEachRecent((state) => state.purgeExpired().then(() => undefined));
      for (let i = 0; i < r.failed; i++) purgeFailed(new Error("purge of a tenant failed"));
    },
  });
  purge.start();

  const openState = (key: TenantKey) => async () =>
    StateStore.open({
      database: await tenants.get(key),
      purgeIntervalMs: 0,
      // Every write of the tenant in this process goes through this one store (the cache keeps
      // one per tenant, and the tenant's file is this node's own copy under its ownership
      // lease), which delivers it to the watchers at once: polling the change log would only
      // cost a read transaction per tenant every 250 ms.
      changePollIntervalMs: 0,
      clock,
      onListenerError: onError("state_listener"),
    });

  return {
    objects,
    files,
    claims,
    uploads,
    resumable,
    outbox: new Outbox({ database: control, clock }),
    dispatcher,
    peerNames: new PeerNames({ database: control, clock }),
    tenants,
    leases,
    control,
    deleteQueue,
    onLeaseLost: (fn) => {
      lostHandlers.push(fn);
    },
    tenantOf: tenantKeyOf,
    cachedTenantIds: () => states.ids(),
    useState: (key, fn) => states.use(key.toString(), openState(key), fn),
    pinState: (key) => states.pin(key.toString(), openState(key)),
    async close() {
      const errors: string[] = [];
      const attempt = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      };
      await attempt("state purge", () => purge.stop());
      await attempt("claim sweeper", () => sweeper.stop());
      await attempt("delete worker", () => deleteWorker.stop());
      await attempt("outbox dispatcher", () => dispatcher.stop());
      await attempt("state stores", () => states.close());
      await attempt("tenants", () => tenants.close());
      if (leases !== undefined) await attempt("tenant leases", () => leases.close());
      await attempt("control database", () => control.close());
      if (ownsObjects) await attempt("object store", () => objects.close());
      return errors;
    },
  };
}
