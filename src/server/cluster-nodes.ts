import type { Clock } from "../clock.js";
import type { Database } from "../sql/index.js";

/** A node sharing the control database, as `/v1/inspector` shows it. */
export interface ClusterNode {
  /** The node's id: its tenant cache's writer id (also the holder of its leases and the writer of its manifests). */
  readonly id: string;
  /** Where it accepts forwarded requests (`--advertise`). */
  readonly address: string;
  /** Where clients reach it (`--public-url`, default the advertised address); `--forward redirect` sends clients there. */
  readonly publicUrl: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  /** 0 while running; when it shut down cleanly otherwise. */
  readonly stoppedAt: number;
  /** Heartbeat seen within a lease period and not stopped. */
  readonly live: boolean;
}

interface NodeRow {
  id: string;
  address: string;
  public_url: string;
  started_at: number | string;
  heartbeat_at: number | string;
  stopped_at: number | string;
}

/** Nodes not seen for this long drop out of the listing. */
const FORGET_AFTER_MS = 24 * 3_600_000;

/**
 * The membership table (`storeroom_nodes`): each node upserts its row on start, refreshes its
 * heartbeat with every lease renewal, and marks it stopped on a clean shutdown. A node is live
 * while its heartbeat is younger than one lease period. Informational: ownership itself is
 * decided by the tenant leases, never by this table.
 */
export class ClusterNodes {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #liveMs: number;
  readonly id: string;
  #address: string;
  #publicUrl: string;
  #known: ClusterNode[] = [];

  constructor(options: {
    database: Database;
    clock: Clock;
    id: string;
    address: string;
    publicUrl: string;
    liveMs: number;
  }) {
    this.#db = options.database;
    this.#clock = options.clock;
    this.id = options.id;
    this.#address = options.address;
    this.#publicUrl = options.publicUrl;
    this.#liveMs = options.liveMs;
  }

  get address(): string {
    return this.#address;
  }

  /** Records this node as started (again) at `address` / `publicUrl`. */
  async register(address: string, publicUrl: string): Promise<void> {
    this.#address = address;
    this.#publicUrl = publicUrl;
    const now = this.#clock.now();
    await this.#db.run(
      `INSERT INTO storeroom_nodes (id, address, public_url, started_at, heartbeat_at, stopped_at)
       VALUES ($1, $2, $3, $4, $4, 0)
       ON CONFLICT (id) DO UPDATE SET address = excluded.address, public_url = excluded.public_url,
         started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = 0`,
      [this.id, address, publicUrl, now],
    );
    await this.refresh();
  }

  /** Refreshes this node's heartbeat and the cached listing. */
  async heartbeat(): Promise<void> {
    await this.#db.run("UPDATE storeroom_nodes SET heartbeat_at = $2, stopped_at = 0 WHERE id = $1", [
      this.id,
      this.#clock.now(),
    ]);
    await this.refresh();
  }

  /** Reads the listing from the database (nodes seen within a day). */
  async refresh(): Promise<ClusterNode[]> {
    const now = this.#clock.now();
    const rows = await this.#db.all<NodeRow>("SELECT * FROM storeroom_nodes WHERE heartbeat_at > $1 ORDER BY id", [
      now - FORGET_AFTER_MS,
    ]);
    this.#known = rows.map((r) => {
      const heartbeatAt = Number(r.heartbeat_at);
      const stoppedAt = Number(r.stopped_at);
      return {
        id: r.id,
        address: r.address,
        publicUrl: r.public_url,
        startedAt: Number(r.started_at),
        heartbeatAt,
        stoppedAt,
        live: stoppedAt === 0 && heartbeatAt + this.#liveMs > now,
      };
    });
    return this.#known;
  }

  /** The listing as of the last heartbeat or refresh. */
  get known(): readonly ClusterNode[] {
    return this.#known;
  }

  /** Another node known to be live now (as of the last refresh). */
  othersLive(): ClusterNode[] {
    return this.#known.filter((n) => n.live && n.id !== this.id);
  }

  /** The public URL of `id`, or `undefined` when it is not known. */
  publicUrlOf(id: string): string | undefined {
    const node = this.#known.find((n) => n.id === id);
    return node === undefined || node.publicUrl === "" ? undefined : node.publicUrl;
  }

  /** Whether `id`'s heartbeat is fresh as of the last refresh (unknown nodes count as live: ownership decides). */
  isLive(id: string): boolean {
    const node = this.#known.find((n) => n.id === id);
    return node === undefined || node.live;
  }

  /** Marks this node stopped (clean shutdown). */
  async stop(): Promise<void> {
    await this.#db.run("UPDATE storeroom_nodes SET stopped_at = $2 WHERE id = $1", [this.id, this.#clock.now()]);
  }

  /** This node's public URL. */
  get publicUrl(): string {
    return this.#publicUrl;
  }
}
