import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type AuditBreak, AuditLog, Broker, type BusMessage, MessageStore } from "../bus/index.js";
import type { Clock } from "../clock.js";
import { ClosedError } from "../errors.js";
import type { Database } from "../sql/index.js";
import { openPostgres, openSqlite } from "../sql/index.js";
import { TenantKey } from "../tenants/index.js";
import { isPostgresUrl } from "./control-database.js";

/** Options of {@link OrgBuses}. */
export interface OrgBusesOptions {
  /** The control database target: on PostgreSQL each org gets a schema there, else a SQLite file under `dataDir/bus/`. */
  database: string;
  dataDir: string;
  /** HMAC secret every peer signs envelopes with (>= 32 bytes). */
  hmacSecret: string;
  clock: Clock;
  /** How long every org broker keeps acked messages, and how often it prunes them (see `BrokerOptions`). */
  ackedRetentionMs: number;
  pruneIntervalMs: number;
  onError: (err: unknown) => void;
  /** Whether the caller passed to {@link Broker.handleUpgrade} may register `name` on its org's bus. */
  authorizeRegistration: (orgId: string, name: string, context: unknown) => Promise<boolean>;
}

interface OrgBus {
  db: Database;
  store: MessageStore;
  audit: AuditLog;
  broker: Broker;
}

/** An org's audit chain as the inspector shows it. */
export interface OrgAuditStatus {
  readonly orgId: string;
  readonly rows: number;
  readonly intact: boolean;
  readonly break?: AuditBreak;
}

/** A registered peer of an org's bus as the console shows it. */
export interface OrgBusPeer {
  readonly name: string;
  /** Connected to this process right now. */
  readonly connected: boolean;
  /** First registration, last registration and last time seen connected, ms since the epoch. */
  readonly firstSeen: number;
  readonly registered: number;
  readonly lastSeen: number;
  /** Messages waiting for it (undelivered, unacked), counted up to {@link maxBacklogCount}. */
  readonly backlog: number;
}

/** Backlogs are counted up to this many messages (the console shows "1000+"). */
export const maxBacklogCount = 1000;

/**
 * One peerbus broker per org, each over its own message store and audit chain, so peer names,
 * queues and broadcasts never cross orgs. The HTTP upgrade is authenticated by the server and
 * its identity decides which peer names the connection may register (`authorizeRegistration`);
 * the register frame's token is any non-empty string.
 */
export class OrgBuses {
  readonly #options: OrgBusesOptions;
  readonly #buses = new Map<string, Promise<OrgBus>>();
  readonly #open = new Map<string, OrgBus>();
  /** Rows pruned by brokers closed since (their counters go with them). */
  #prunedByClosed = 0;
  #closed = false;

  constructor(options: OrgBusesOptions) {
    this.#options = options;
  }

  /** The org's broker, opened (and its tables migrated) on first use. Bad org slug -> InvalidKeyError. */
  async broker(orgId: string): Promise<Broker> {
    return (await this.#bus(orgId)).broker;
  }

  /** Orgs with an open bus in this process. */
  get orgs(): string[] {
    return [...this.#buses.keys()].sort();
  }

  /** Undelivered messages summed over the org buses open in this process (only `orgId`'s when given). */
  async countUndelivered(orgId?: string): Promise<number> {
    let total = 0;
    for (const org of this.#openOrgs(orgId)) total += await (await this.#bus(org)).store.countUndelivered();
    return total;
  }

  /** Audit chain status of every open org bus (only `orgId`'s when given). */
  async auditStatus(only?: string): Promise<OrgAuditStatus[]> {
    const out: OrgAuditStatus[] = [];
    for (const orgId of this.#openOrgs(only)) out.push(await this.verifyAudit(orgId));
    return out;
  }

  /** WebSocket peers connected right now, over every org broker open in this process. */
  connectedPeerCount(): number {
    let n = 0;
    for (const bus of this.#open.values()) n += bus.broker.connectedPeers().length;
    return n;
  }

  /** Acked messages pruned after their retention window by every org broker of this process, closed ones included. */
  prunedAcked(): number {
    let n = this.#prunedByClosed;
    for (const bus of this.#open.values()) n += bus.broker.prunedAcked;
    return n;
  }

  /** The registered peers of `orgId`'s bus (opening it), connected or not, with their backlog. */
  async peers(orgId: string): Promise<OrgBusPeer[]> {
    const bus = await this.#bus(orgId);
    const connected = new Set(bus.broker.connectedPeers());
    const out: OrgBusPeer[] = [];
    for (const peer of await bus.store.peers()) {
      const backlog = (await bus.store.pendingFor(peer.name, { limit: maxBacklogCount })).length;
      out.push({ ...peer, connected: connected.has(peer.name), backlog });
    }
    return out;
  }

  /** The latest messages of `orgId`'s bus, newest first (see `MessageStore.recent`). */
  async recentMessages(orgId: string, limit: number): Promise<BusMessage[]> {
    return (await this.#bus(orgId)).store.recent(limit);
  }

  /** One message of `orgId`'s bus, or `undefined`. */
  async message(orgId: string, id: string): Promise<BusMessage | undefined> {
    return (await this.#bus(orgId)).store.get(id);
  }

  /** Verifies `orgId`'s audit chain now (opening its bus). */
  async verifyAudit(orgId: string): Promise<OrgAuditStatus> {
    const bus = await this.#bus(orgId);
    const found = await bus.audit.verify();
    const rows = await bus.audit.count();
    return found === null ? { orgId, rows, intact: true } : { orgId, rows, intact: false, break: found };
  }

  /**
   * Closes one org's broker (its peers get 1001 and reconnect, landing on the node that now
   * serves the org) and its database; the next use opens it again. Does nothing when it is not open.
   */
  async closeOrg(orgId: string): Promise<void> {
    const bus = this.#buses.get(orgId);
    if (bus === undefined) return;
    this.#buses.delete(orgId);
    this.#open.delete(orgId);
    const opened = await bus.catch(() => undefined);
    if (opened === undefined) return;
    await opened.broker.close();
    this.#prunedByClosed += opened.broker.prunedAcked;
    await opened.store.close();
    await opened.audit.close();
    await opened.db.close();
  }

  /** Closes every broker (peers get 1001), then the stores and databases. */
  async close(): Promise<void> {
    this.#closed = true;
    const buses = await Promise.allSettled([...this.#buses.values()]);
    this.#buses.clear();
    this.#open.clear();
    const errors: unknown[] = [];
    for (const r of buses) {
      if (r.status !== "fulfilled") continue;
      for (const step of [
        () => r.value.broker.close(),
        () => r.value.store.close(),
        () => r.value.audit.close(),
        () => r.value.db.close(),
      ]) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `closing ${errors.length} bus part(s) failed`);
  }

  #openOrgs(only: string | undefined): string[] {
    return only === undefined ? this.orgs : this.orgs.filter((o) => o === only);
  }

  #bus(orgId: string): Promise<OrgBus> {
    if (this.#closed) return Promise.reject(new ClosedError("the server is shutting down", { op: "server.bus" }));
    TenantKey.org(orgId).validate();
    let bus = this.#buses.get(orgId);
    if (bus === undefined) {
      bus = this.#openBus(orgId);
      this.#buses.set(orgId, bus);
      bus.then(
        (opened) => {
          if (!this.#closed) this.#open.set(orgId, opened);
        },
        () => this.#buses.delete(orgId),
      );
    }
    return bus;
  }

  async #openBus(orgId: string): Promise<OrgBus> {
    const { database, dataDir, clock, hmacSecret, onError, authorizeRegistration, ackedRetentionMs, pruneIntervalMs } =
      this.#options;
    let db: Database;
    if (isPostgresUrl(database)) {
      // Schema names allow [a-z0-9_] only; a digest keeps every org slug (with '-') distinct.
      const schema = `bus_${createHash("sha256").update(orgId).digest("hex").slice(0, 24)}`;
      db = await openPostgres(database, { schema, max: 2, clock });
    } else {
      await mkdir(join(dataDir, "bus"), { recursive: true });
      db = await openSqlite(join(dataDir, "bus", `${orgId}.db`), { clock });
    }
    try {
      const store = await MessageStore.open({ database: db, clock });
      const audit = await AuditLog.open({ database: db, clock });
      const broker = new Broker({
        store,
        audit,
        hmacSecret,
        authenticate: (token) => token.length > 0,
        authorizeRegistration: (name, context) => authorizeRegistration(orgId, name, context),
        onError,
        clock,
        ackedRetentionMs,
        pruneIntervalMs,
      });
      return { db, store, audit, broker };
    } catch (err) {
      await db.close();
      throw err;
    }
  }
}
