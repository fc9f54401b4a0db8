import { BackgroundJob } from "../background-job.js";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError } from "../errors.js";
import { booleanOption, functionOption, positiveInteger } from "../internal/option-checks.js";
import type { Database } from "../sql/index.js";
import type { TenantKey } from "./tenant-key.js";
import { TenantOwnedElsewhereError } from "./tenant-owned-elsewhere-error.js";
import type { TenantLease, TenantOwnership } from "./tenant-ownership.js";
import { tenantsMigrations } from "./tenants-migrations.js";

/** Options of {@link TenantLeases.open}. */
export interface TenantLeasesOptions {
  /** The shared control database holding `storeroom_tenant_leases` (PostgreSQL when several processes share it). */
  database: Database;
  /** This process's id as a lease holder: its tenant store's `writerId`, so a lease names the manifest's writer. */
  holder: string;
  /** Where this process accepts forwarded requests (`http://host:port`), stored with each lease it takes. Default `""`. */
  address?: string;
  /** How long a lease lasts unless renewed, ms. Renewed every third of it while held. Default 15000. */
  leaseMs?: number;
  /**
   * A holder stops trusting its lease this long before it expires and confirms it with the
   * database first: the clock skew between processes the leases tolerate, ms. Default a quarter
   * of `leaseMs`.
   */
  guardMs?: number;
  /** Apply the table's migration on open. Default true. */
  migrate?: boolean;
  /** Time source of expiries (each process's own clock; see `guardMs`). Default the system clock. */
  clock?: Clock;
  /** A lease this process held was taken by another (it expired without being renewed in time). */
  onLost?: (key: string) => void;
  /** Errors of the background renewal (the next run retries). Default: a process warning. */
  onError?: (err: unknown) => void;
}

/** Where a tenant's requests go: served here under a lease pinned until `release()`, or by another live holder. */
export type TenantPlacement =
  | { readonly local: true; readonly lease: TenantLease; release(): void }
  | { readonly local: false; readonly holder: string; readonly address: string; readonly expiresAt: number };

/** A lease row as the inspector shows it. */
export interface TenantLeaseInfo {
  readonly tenant: string;
  readonly holder: string;
  readonly address: string;
  readonly epoch: number;
  /** ms since the epoch; 0 once released. */
  readonly expiresAt: number;
  readonly acquiredAt: number;
}

/** Counters since open. */
export interface TenantLeaseCounters {
  /** Leases taken (including re-takes after a release). */
  acquired: number;
  /** Leases taken from another holder whose lease had expired without a release. */
  steals: number;
  /** Leases this process lost to another holder before releasing them. */
  lost: number;
  /** Leases released (eviction, shutdown). */
  released: number;
}

interface Held {
  epoch: number;
  stolen: boolean;
  /** Local time until which the lease is trusted without asking the database. */
  validUntil: number;
  /** When the entry appeared (local time): a renewal that started earlier cannot have seen it. */
  since: number;
  /** Requests served under the lease right now. */
  pins: number;
  /** The tenant store has the tenant loaded. */
  resident: boolean;
  confirming: Promise<void> | undefined;
}

interface Remote {
  readonly remote: true;
  readonly holder: string;
  readonly address: string;
  readonly expiresAt: number;
}

interface LeaseRow {
  tenant: string;
  holder: string;
  address: string;
  epoch: number | string;
  expires_at: number | string;
  acquired_at: number | string;
}

const op = "tenants.leases";

/**
 * Tenant ownership leases in a control database shared by several processes (PostgreSQL, or
 * SQLite for one machine): one holder per tenant at a time, taken on first use, renewed in
 * the background while the tenant is loaded or a request is served under it, released when
 * the tenant is closed, and taken from another holder only once its lease expired. Each take
 * raises the tenant's fencing epoch, which the {@link TenantStore} writes into the tenant's
 * manifest (the conditional write is what fences a late holder, not the clock).
 *
 * @example
 * ```ts
 * const leases = await TenantLeases.open({ database: control, holder: tenants.writerId, address: "http://10.0.0.5:7480" });
 * const placement = await leases.place(TenantKey.org("acme"));
 * if (placement.local) try { ... } finally { placement.release(); }
 * else forwardTo(placement.address);
 * ```
 */
export class TenantLeases implements TenantOwnership {
  /** This process's holder id. */
  readonly holder: string;
  /** Lease duration, ms. */
  readonly leaseMs: number;
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #guardMs: number;
  readonly #onLost: (key: string) => void;
  readonly #held = new Map<string, Held>();
  readonly #taking = new Map<string, Promise<Held | Remote>>();
  /**
   * Other holders' leases as last read, used by {@link place} until they expire so that a
   * forwarded request costs no database round trip (the holder checks its lease itself).
   */
  readonly #remote = new Map<string, Remote>();
  readonly #releasing = new Map<string, Promise<void>>();
  readonly #counters: TenantLeaseCounters = { acquired: 0, steals: 0, lost: 0, released: 0 };
  readonly #job: BackgroundJob<{ renewed: number; lost: number }>;
  #address: string;
  #closed = false;

  private constructor(options: TenantLeasesOptions) {
    this.#db = options.database;
    this.holder = options.holder;
    this.#address = options.address ?? "";
    this.leaseMs = positiveInteger(options.leaseMs, "leaseMs", op, 15_000);
    this.#guardMs = options.guardMs === undefined ? Math.floor(this.leaseMs / 4) : options.guardMs;
    if (!Number.isSafeInteger(this.#guardMs) || this.#guardMs < 0 || this.#guardMs >= this.leaseMs) {
      throw new InvalidArgumentError(`guardMs must be an integer in 0..leaseMs-1, got ${String(options.guardMs)}`, {
        op,
      });
    }
    this.#clock = options.clock ?? systemClock;
    this.#onLost = functionOption(options.onLost, "onLost", op) ?? (() => undefined);
    functionOption(options.onError, "onError", op);
    this.#job = new BackgroundJob({
      name: "tenant lease renewal",
      intervalMs: Math.max(1, Math.floor(this.leaseMs / 3)),
      run: () => this.#renewAll(),
      clock: this.#clock,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    });
  }

  /** Opens the lease store (migrating its table unless `migrate: false`) and starts the renewal job. */
  static async open(options: TenantLeasesOptions): Promise<TenantLeases> {
    if (options?.database === undefined) throw new InvalidArgumentError("database is required", { op });
    if (typeof options.holder !== "string" || options.holder === "") {
      throw new InvalidArgumentError("holder must be a non-empty string", { op });
    }
    const migrate = booleanOption(options.migrate, "migrate", op, true);
    const leases = new TenantLeases(options);
    if (migrate) await options.database.migrate(tenantsMigrations);
    leases.#job.start();
    return leases;
  }

  /** Where this process accepts forwarded requests (stored with the leases it takes from now on). */
  get address(): string {
    return this.#address;
  }

  /** Changes the address stored with this process's leases (those held now included). */
  async setAddress(address: string): Promise<void> {
    this.#address = address;
    await this.#db.run("UPDATE storeroom_tenant_leases SET address = $2 WHERE holder = $1", [this.holder, address]);
  }

  /** Counters since open. */
  get counters(): Readonly<TenantLeaseCounters> {
    return { ...this.#counters };
  }

  /** Tenant ids whose lease this process holds now. */
  heldTenants(): string[] {
    return [...this.#held.keys()].sort();
  }

  /**
   * Decides where a tenant's request is served: here (taking the lease when it is free or
   * expired; it stays pinned until `release()`, so it is renewed for as long as the request
   * runs) or by the live holder named in the result.
   */
  async place(key: TenantKey): Promise<TenantPlacement> {
    const id = key.toString();
    const known = this.#remote.get(id);
    if (known !== undefined && this.#clock.now() < known.expiresAt && !this.#held.has(id)) {
      return { local: false, holder: known.holder, address: known.address, expiresAt: known.expiresAt };
    }
    const held = await this.#hold(id, (h) => {
      h.pins += 1;
    });
    if (isRemote(held)) {
      return { local: false, holder: held.holder, address: held.address, expiresAt: held.expiresAt };
    }
    let pinned = true;
    return {
      local: true,
      lease: { epoch: held.epoch, stolen: held.stolen },
      release: () => {
        if (!pinned) return;
        pinned = false;
        held.pins -= 1;
        this.#maybeRelease(id, held);
      },
    };
  }

  /**
   * Forgets what {@link place} last learnt about another holder of the tenant (it could not be
   * reached): the next placement reads the lease again.
   */
  forget(key: TenantKey): void {
    this.#remote.delete(key.toString());
  }

  async acquire(key: TenantKey): Promise<TenantLease> {
    const held = await this.#hold(key.toString(), (h) => {
      h.resident = true;
    });
    if (isRemote(held)) throw new TenantOwnedElsewhereError(key, held.holder, held.address, held.expiresAt, { op });
    return { epoch: held.epoch, stolen: held.stolen };
  }

  async advance(key: TenantKey, lease: TenantLease, minEpoch: number): Promise<TenantLease> {
    const id = key.toString();
    const held = this.#held.get(id);
    if (held === undefined || held.epoch !== lease.epoch) throw await this.#elsewhere(key);
    if (minEpoch <= held.epoch) return lease;
    const { changes } = await this.#db.run(
      "UPDATE storeroom_tenant_leases SET epoch = $4 WHERE tenant = $1 AND holder = $2 AND epoch = $3",
      [id, this.holder, held.epoch, minEpoch],
    );
    if (changes === 0) {
      this.#lose(id, held);
      throw await this.#elsewhere(key);
    }
    held.epoch = minEpoch;
    return { epoch: minEpoch, stolen: lease.stolen };
  }

  async release(key: TenantKey, lease: TenantLease): Promise<void> {
    const id = key.toString();
    const held = this.#held.get(id);
    if (held === undefined || held.epoch !== lease.epoch) return;
    held.resident = false;
    this.#maybeRelease(id, held);
    await this.#releasing.get(id);
  }

  /** The lease row of a tenant, or `undefined` when it was never taken. */
  async lookup(key: TenantKey): Promise<TenantLeaseInfo | undefined> {
    const row = await this.#db.get<LeaseRow>("SELECT * FROM storeroom_tenant_leases WHERE tenant = $1", [
      key.toString(),
    ]);
    return row === undefined ? undefined : toInfo(row);
  }

  /** Live (unexpired, unreleased) leases per holder. */
  async liveByHolder(): Promise<Map<string, number>> {
    const rows = await this.#db.all<{ holder: string; n: number | string }>(
      "SELECT holder, COUNT(*) AS n FROM storeroom_tenant_leases WHERE expires_at > $1 GROUP BY holder",
      [this.#clock.now()],
    );
    return new Map(rows.map((r) => [r.holder, Number(r.n)]));
  }

  /**
   * Renews every lease this process holds in one statement (the background job runs this
   * every `leaseMs / 3`). A lease found taken by another holder is lost: it is forgotten and
   * reported to `onLost`. Rows still naming this holder that it no longer tracks (left by an
   * earlier run of the same cache) are released. Runs after a renewal in progress, never beside it.
   */
  renew(): Promise<{ renewed: number; lost: number }> {
    return this.#job.runOnce();
  }

  async #renewAll(): Promise<{ renewed: number; lost: number }> {
    if (this.#closed) return { renewed: 0, lost: 0 };
    const started = this.#clock.now();
    for (const [id, remote] of this.#remote) if (remote.expiresAt <= started) this.#remote.delete(id);
    const rows = await this.#db.all<{ tenant: string; epoch: number | string }>(
      "UPDATE storeroom_tenant_leases SET expires_at = $2 WHERE holder = $1 AND expires_at > 0 RETURNING tenant, epoch",
      [this.holder, started + this.leaseMs],
    );
    const found = new Map(rows.map((r) => [r.tenant, Number(r.epoch)]));
    let renewed = 0;
    let lost = 0;
    for (const [id, held] of [...this.#held]) {
      if (found.get(id) === held.epoch) {
        held.validUntil = Math.max(held.validUntil, started + this.leaseMs - this.#guardMs);
        renewed += 1;
      } else if (held.since < started) {
        this.#lose(id, held);
        lost += 1;
      }
    }
    for (const [id, epoch] of found) {
      if (this.#held.has(id) || this.#taking.has(id) || this.#releasing.has(id)) continue;
      await this.#db.run(
        "UPDATE storeroom_tenant_leases SET expires_at = 0 WHERE tenant = $1 AND holder = $2 AND epoch = $3",
        [id, this.holder, epoch],
      );
    }
    return { renewed, lost };
  }

  /** Stops renewing and releases every lease this process holds (none it does not track). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#job.stop();
    await Promise.allSettled([...this.#taking.values(), ...this.#releasing.values()]);
    const held = [...this.#held];
    this.#counters.released += held.length;
    this.#held.clear();
    if (held.length === 0) return;
    // Only the leases this process took: another process with the same holder id (one refused
    // because it found the cache in use) must not release the ones the running process holds.
    await this.#db.transaction(async (tx) => {
      for (const [id, { epoch }] of held) {
        await tx.run(
          "UPDATE storeroom_tenant_leases SET expires_at = 0 WHERE tenant = $1 AND holder = $2 AND epoch = $3",
          [id, this.holder, epoch],
        );
      }
    });
  }

  /** The held entry (marked by `mark` in the same step that confirms it) or the remote holder. */
  async #hold(id: string, mark: (held: Held) => void): Promise<Held | Remote> {
    for (;;) {
      if (this.#closed) throw new ClosedError("tenant leases are closed", { op });
      const held = this.#held.get(id);
      if (held !== undefined) {
        if (this.#clock.now() < held.validUntil) {
          mark(held);
          return held;
        }
        held.confirming ??= this.#confirm(id, held).finally(() => {
          held.confirming = undefined;
        });
        await held.confirming;
        continue;
      }
      let taking = this.#taking.get(id);
      if (taking === undefined) {
        taking = this.#take(id).finally(() => this.#taking.delete(id));
        this.#taking.set(id, taking);
      }
      const taken = await taking;
      if (isRemote(taken)) {
        this.#remote.set(id, taken);
        return taken;
      }
      this.#remote.delete(id);
    }
  }

  /** Renews one lease whose local validity ran out (the process may have been paused); lost when it was taken. */
  async #confirm(id: string, held: Held): Promise<void> {
    const started = this.#clock.now();
    const { changes } = await this.#db.run(
      "UPDATE storeroom_tenant_leases SET expires_at = $4 WHERE tenant = $1 AND holder = $2 AND epoch = $3 AND expires_at > 0",
      [id, this.holder, held.epoch, started + this.leaseMs],
    );
    if (changes === 0) this.#lose(id, held);
    else held.validUntil = started + this.leaseMs - this.#guardMs;
  }

  async #take(id: string): Promise<Held | Remote> {
    await this.#releasing.get(id);
    const now = this.#clock.now();
    const taken = await this.#db.transaction(async (tx): Promise<Remote | { epoch: number; stolen: boolean }> => {
      await tx.run(
        "INSERT INTO storeroom_tenant_leases (tenant, holder, address, epoch, expires_at, acquired_at) VALUES ($1, '', '', 0, 0, 0) ON CONFLICT (tenant) DO NOTHING",
        [id],
      );
      const row = (await tx.get<LeaseRow>(
        `SELECT * FROM storeroom_tenant_leases WHERE tenant = $1${tx.dialect.forUpdate}`,
        [id],
      )) as LeaseRow;
      const expiresAt = Number(row.expires_at);
      if (row.holder !== this.holder && expiresAt > now) {
        return { remote: true, holder: row.holder, address: row.address, expiresAt };
      }
      const epoch = Number(row.epoch) + 1;
      await tx.run(
        "UPDATE storeroom_tenant_leases SET holder = $2, address = $3, epoch = $4, expires_at = $5, acquired_at = $6 WHERE tenant = $1",
        [id, this.holder, this.#address, epoch, now + this.leaseMs, now],
      );
      return { epoch, stolen: row.holder !== "" && row.holder !== this.holder && expiresAt > 0 };
    });
    if ("remote" in taken) return taken;
    this.#counters.acquired += 1;
    if (taken.stolen) this.#counters.steals += 1;
    const held: Held = {
      epoch: taken.epoch,
      stolen: taken.stolen,
      validUntil: now + this.leaseMs - this.#guardMs,
      since: this.#clock.now(),
      pins: 0,
      resident: false,
      confirming: undefined,
    };
    this.#held.set(id, held);
    return held;
  }

  #maybeRelease(id: string, held: Held): void {
    if (held.pins > 0 || held.resident || this.#held.get(id) !== held) return;
    this.#held.delete(id);
    this.#counters.released += 1;
    const releasing = this.#db
      .run("UPDATE storeroom_tenant_leases SET expires_at = 0 WHERE tenant = $1 AND holder = $2 AND epoch = $3", [
        id,
        this.holder,
        held.epoch,
      ])
      .then(
        () => undefined,
        // Not released: it expires on its own.
        () => undefined,
      )
      .finally(() => {
        if (this.#releasing.get(id) === releasing) this.#releasing.delete(id);
      });
    this.#releasing.set(id, releasing);
  }

  #lose(id: string, held: Held): void {
    if (this.#held.get(id) !== held) return;
    this.#held.delete(id);
    this.#counters.lost += 1;
    this.#onLost(id);
  }

  async #elsewhere(key: TenantKey): Promise<TenantOwnedElsewhereError> {
    const row = await this.lookup(key);
    return new TenantOwnedElsewhereError(key, row?.holder ?? "", row?.address ?? "", row?.expiresAt ?? 0, { op });
  }
}

function isRemote(value: Held | Remote): value is Remote {
  return (value as Remote).remote === true;
}

function toInfo(row: LeaseRow): TenantLeaseInfo {
  return {
    tenant: row.tenant,
    holder: row.holder,
    address: row.address,
    epoch: Number(row.epoch),
    expiresAt: Number(row.expires_at),
    acquiredAt: Number(row.acquired_at),
  };
}
