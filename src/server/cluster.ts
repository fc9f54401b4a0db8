import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import type { FastifyReply, FastifyRequest } from "fastify";
import { BackgroundJob } from "../background-job.js";
import type { Clock } from "../clock.js";
import type { Database } from "../sql/index.js";
import { TenantKey, type TenantLeases } from "../tenants/index.js";
import { type ClusterNode, ClusterNodes } from "./cluster-nodes.js";
import { sharedForwardSecret } from "./cluster-secrets.js";
import { HttpError } from "./error-reply.js";
import { ForwardingAuthenticator, forwardedHops, servedByHeader } from "./forwarded-identity.js";
import type { Authenticator, RequestIdentity } from "./identity.js";
import { canAdministerOrg } from "./identity.js";
import { tenantKeyOf } from "./identity-policy.js";
import { RequestForwarder } from "./request-forwarder.js";
import type { ClusterReadings } from "./server-metrics.js";
import type { SharedSettings } from "./shared-settings.js";

/** How a node sends a client to the tenant's owner: stream the request there, or answer 307 with the owner's public URL. */
export type ForwardMode = "proxy" | "redirect";

/** Options of {@link Cluster.open}. */
export interface ClusterOptions {
  control: Database;
  settings: SharedSettings;
  leases: TenantLeases;
  clock: Clock;
  /** The advertised internal URL; `undefined`: the URL the server listens on. */
  advertise: string | undefined;
  /** The URL clients reach this node at; `undefined`: the advertised one. */
  publicUrl: string | undefined;
  forward: ForwardMode;
  onError: (err: unknown) => void;
}

/** Counters of requests this node sent elsewhere or received from other nodes. */
export interface ForwardCounters {
  /** Streamed to the owner. */
  proxied: number;
  /** Answered 307 with the owner's public URL. */
  redirected: number;
  /** Attempts that found the owner unreachable (retried until its lease expired). */
  unreachable: number;
  /** Requests other nodes forwarded here. */
  received: number;
}

/** What `/v1/inspector` and `/metrics` show about the cluster. */
export interface ClusterStatus {
  /** This node's id. */
  readonly node: string;
  readonly forward: ForwardMode;
  readonly leaseMs: number;
  /** Every node seen within a day, with the tenants whose live lease it holds. */
  readonly nodes: readonly (ClusterNode & { readonly ownedTenants: number })[];
}

/** Requests forwarded at most this many times (a lease that moves while a request travels). */
const MAX_HOPS = 2;
/** While the owner cannot be reached, its lease is looked at again this often, ms. */
const UNREACHABLE_POLL_MS = 100;

/**
 * The node's part in a cluster of servers on one PostgreSQL control database: its membership
 * row and heartbeat, the internal forwarding secret, and the routing of tenant requests. Each
 * request for a tenant (state routes, the bus of an org, its peer list) is served here under
 * this node's lease, or forwarded to the live owner; when the owner cannot be reached the
 * request waits until its lease expires and is then served here (a takeover).
 */
export class Cluster {
  readonly nodes: ClusterNodes;
  readonly forward: ForwardMode;
  readonly #leases: TenantLeases;
  readonly #clock: Clock;
  readonly #forwarder: RequestForwarder;
  readonly #secret: string;
  readonly #heartbeat: BackgroundJob<void>;
  readonly #advertise: string | undefined;
  readonly #publicUrl: string | undefined;
  readonly #counters: ForwardCounters = { proxied: 0, redirected: 0, unreachable: 0, received: 0 };
  #authenticator: ForwardingAuthenticator | undefined;

  private constructor(options: ClusterOptions, secret: string) {
    this.#leases = options.leases;
    this.#clock = options.clock;
    this.#secret = secret;
    this.forward = options.forward;
    this.#advertise = options.advertise;
    this.#publicUrl = options.publicUrl;
    this.#forwarder = new RequestForwarder({
      secret,
      now: () => options.clock.now(),
      answerTimeoutMs: options.leases.leaseMs,
    });
    this.nodes = new ClusterNodes({
      database: options.control,
      clock: options.clock,
      id: options.leases.holder,
      address: options.advertise ?? "",
      publicUrl: options.publicUrl ?? options.advertise ?? "",
      liveMs: options.leases.leaseMs,
    });
    this.#heartbeat = new BackgroundJob({
      name: "cluster heartbeat",
      intervalMs: Math.max(1, Math.floor(options.leases.leaseMs / 3)),
      run: () => this.nodes.heartbeat(),
      clock: options.clock,
      onError: options.onError,
    });
  }

  /** Reads the shared forwarding secret and the membership listing (the node registers once it listens). */
  static async open(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options, await sharedForwardSecret(options.settings));
    await cluster.nodes.refresh();
    return cluster;
  }

  /** This node's id (its tenant cache's writer id). */
  get id(): string {
    return this.nodes.id;
  }

  /** Counters since start. */
  get counters(): Readonly<ForwardCounters> {
    return { ...this.#counters };
  }

  /** `inner`, plus the identity of requests other nodes forwarded here with the internal secret. */
  authenticator(inner: Authenticator): Authenticator {
    this.#authenticator = new ForwardingAuthenticator(inner, this.#secret, () => this.#clock.now());
    return this.#authenticator;
  }

  /** The server listens at `url`: registers this node (advertising `url` unless told otherwise) and starts the heartbeat. */
  async listening(url: string): Promise<void> {
    const address = this.#advertise ?? url;
    await this.#leases.setAddress(address);
    await this.nodes.register(address, this.#publicUrl ?? address);
    this.#heartbeat.start();
  }

  /**
   * An `onRequest` hook, after authentication: a request for a tenant this node does not own
   * is forwarded (or redirected) and the lifecycle ends here; otherwise it runs here under the
   * tenant's lease, pinned until the answer is sent (so an event stream keeps it).
   */
  async route(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.header(servedByHeader, this.id);
    if (this.#authenticator?.isForwarded(request.headers) === true) this.#counters.received += 1;
    const key = tenantOfRequest(request);
    if (key === undefined) return;
    const hops = forwardedHops(request.headers);
    const deadline = this.#clock.now() + 2 * this.#leases.leaseMs;
    for (;;) {
      const placement = await this.#leases.place(key);
      if (placement.local) {
        reply.raw.once("close", placement.release);
        return;
      }
      if (hops >= MAX_HOPS) throw unavailable(key, placement.holder);
      if (this.forward === "redirect") {
        const target = this.nodes.publicUrlOf(placement.holder);
        if (target !== undefined && this.nodes.isLive(placement.holder)) {
          this.#counters.redirected += 1;
          await reply.redirect(new URL(request.raw.url ?? "/", target).toString(), 307);
          return;
        }
      } else if (placement.address !== "") {
        const outcome = await this.#forwarder.proxy(
          request.raw,
          reply.raw,
          placement.address,
          request.identity,
          hops,
          () => reply.hijack(),
        );
        if (outcome === "forwarded") {
          this.#counters.proxied += 1;
          return;
        }
      }
      this.#counters.unreachable += 1;
      this.#leases.forget(key);
      await this.#waitForOwner(key, placement.holder, placement.expiresAt, deadline);
    }
  }

  /**
   * Routes a WebSocket upgrade for `key`: served here (`release` once the socket closes) or
   * spliced to the owner (`false`).
   */
  async routeUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    identity: RequestIdentity,
    key: TenantKey,
  ): Promise<{ release(): void } | false> {
    const hops = forwardedHops(req.headers);
    const deadline = this.#clock.now() + 2 * this.#leases.leaseMs;
    for (;;) {
      const placement = await this.#leases.place(key);
      if (placement.local) return placement;
      if (hops >= MAX_HOPS) throw unavailable(key, placement.holder);
      if (placement.address !== "") {
        const outcome = await this.#forwarder.proxyUpgrade(req, socket, head, placement.address, identity, hops);
        if (outcome === "forwarded") {
          this.#counters.proxied += 1;
          return false;
        }
      }
      this.#counters.unreachable += 1;
      this.#leases.forget(key);
      await this.#waitForOwner(key, placement.holder, placement.expiresAt, deadline);
    }
  }

  /**
   * The body of a request that a forwarding attempt already read (an owner that was shutting
   * down refused it) and that is now served here: `undefined` when the body is still unread in
   * the request, `null` when it was too large to keep.
   */
  sentBody(raw: IncomingMessage): Promise<Buffer | null | undefined> {
    return this.#forwarder.sentBody(raw);
  }

  /** What `/metrics` shows (from memory: the membership as of the last heartbeat). */
  readings(): ClusterReadings {
    const known = this.nodes.known;
    const live = known.filter((n) => n.live).length;
    const leases = this.#leases.counters;
    return {
      ownedTenants: this.#leases.heldTenants().length,
      liveNodes: live,
      downNodes: known.length - live,
      forwarded: this.counters,
      leases: { acquired: leases.acquired, steals: leases.steals, lost: leases.lost },
    };
  }

  /** Membership with the live leases each node holds. */
  async status(): Promise<ClusterStatus> {
    const [nodes, owned] = await Promise.all([this.nodes.refresh(), this.#leases.liveByHolder()]);
    return {
      node: this.id,
      forward: this.forward,
      leaseMs: this.#leases.leaseMs,
      nodes: nodes.map((n) => ({ ...n, ownedTenants: owned.get(n.id) ?? 0 })),
    };
  }

  /** Stops the heartbeat, marks this node stopped and closes connections to peers. */
  async close(): Promise<void> {
    await this.#heartbeat.stop();
    this.#forwarder.close();
    await this.nodes.stop();
  }

  /** Waits a little for an unreachable owner's lease to expire (or move); 503 once the deadline passed. */
  async #waitForOwner(key: TenantKey, holder: string, expiresAt: number, deadline: number): Promise<void> {
    const now = this.#clock.now();
    if (now >= deadline) throw unavailable(key, holder);
    await delay(Math.max(1, Math.min(UNREACHABLE_POLL_MS, expiresAt - now)));
  }
}

/**
 * The tenant a request works on, when it must run where the tenant is owned: the state routes
 * (the caller's tenant, or the `?tenant=` an admin may act on) and an org's bus peer list (the
 * org's tenant's owner also runs the org's bus broker). Anything else runs on any node.
 */
function tenantOfRequest(request: FastifyRequest): TenantKey | undefined {
  const identity = request.identity;
  const url = request.routeOptions.url;
  if (identity === null || url === undefined) return undefined;
  const query = request.query as Record<string, string | undefined> | undefined;
  try {
    if (url === "/v1/state" || url.startsWith("/v1/state/")) {
      const requested = query?.tenant;
      if (requested === undefined) return tenantKeyOf(identity);
      const key = TenantKey.parse(requested);
      // Refused where it arrives (403); never worth a lease.
      return canAdministerOrg(identity, key.orgId) ? key : undefined;
    }
    if (url === "/v1/bus/peers") {
      const org = query?.org ?? identity.orgId;
      return canAdministerOrg(identity, org) ? TenantKey.org(org) : undefined;
    }
  } catch {
    // A bad tenant or org id is answered by the route itself.
    return undefined;
  }
  return undefined;
}

/** The org bus's home: the node owning the org's tenant. */
export function busTenantOf(orgId: string): TenantKey {
  return TenantKey.org(orgId);
}

function unavailable(key: TenantKey, holder: string): HttpError {
  return new HttpError(
    503,
    "UNAVAILABLE",
    `tenant ${key} is served by node ${holder}, which cannot be reached; it is taken over once its lease expires`,
  );
}
