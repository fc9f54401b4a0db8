import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type AuditBreak, AuditLog, Broker, MessageStore } from "../bus/index.js";
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

/**
 * One peerbus broker per org, each over its own message store and audit chain, so peer names,
 * queues and broadcasts never cross orgs. The HTTP upgrade is authenticated by the server and
 * its identity decides which peer names the connection may register (`authorizeRegistration`);
 * the register frame's token is any non-empty string.
 */
export class OrgBuses {
  readonly #options: OrgBusesOptions;
  readonly #buses = new Map<string, Promise<OrgBus>>();
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
    for (const orgId of this.#openOrgs(only)) {
      const bus = await this.#bus(orgId);
      const found = await bus.audit.verify();
      out.push(
        found === null
          ? { orgId, rows: await bus.audit.count(), intact: true }
          : { orgId, rows: await bus.audit.count(), intact: false, break: found },
      );
    }
    return out;
  }

  /** Closes every broker (peers get 1001), then the stores and databases. */
  async close(): Promise<void> {
    this.#closed = true;
    const buses = await Promise.allSettled([...this.#buses.values()]);
    this.#buses.clear();
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
      bus = this.#open(orgId);
      this.#buses.set(orgId, bus);
      bus.catch(() => this.#buses.delete(orgId));
    }
    return bus;
  }

  async #open(orgId: string): Promise<OrgBus> {
    const { database, dataDir, clock, hmacSecret, onError, authorizeRegistration } = this.#options;
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
      });
      return { db, store, audit, broker };
    } catch (err) {
      await db.close();
      throw err;
    }
  }
}
