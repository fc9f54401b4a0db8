import type { Clock } from "../clock.js";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import type { Executor } from "../sql/index.js";
import type { RequestIdentity } from "./identity.js";

/** Who owns a bus peer name in an org. */
export interface PeerNameOwner {
  readonly orgId: string;
  readonly name: string;
  /** The owning user, or absent when the org itself (a caller without a user id) owns it. */
  readonly userId?: string;
  /** When the name was first claimed or last assigned, ms since the epoch. */
  readonly createdAt: number;
}

/** Longest peer name the server binds, in bytes. */
export const MAX_PEER_NAME_BYTES = 512;

interface Row {
  org_id: string;
  name: string;
  user_id: string;
  created_at: number | string;
}

/**
 * Bus peer names bound to identities: a name belongs to the (org, user) that first registered
 * it, and only that identity may register it again. Org admins reassign or release names
 * through the server's routes. Kept in the control database (migrated with `serverMigrations`),
 * so every server on one PostgreSQL control database agrees.
 */
export class PeerNames {
  readonly #db: Executor;
  readonly #clock: Clock;

  constructor(options: { database: Executor; clock: Clock }) {
    this.#db = options.database;
    this.#clock = options.clock;
  }

  /** Claims `name` in the identity's org when it is free; true when the identity owns it (now or before). */
  async authorize(identity: RequestIdentity, name: string): Promise<boolean> {
    if (Buffer.byteLength(name) > MAX_PEER_NAME_BYTES) return false;
    const owner = identity.userId ?? "";
    await this.#db.run(
      "INSERT INTO storeroom_bus_peer_names (org_id, name, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, name) DO NOTHING",
      [identity.orgId, name, owner, this.#clock.now()],
    );
    const row = await this.#db.get<{ user_id: string }>(
      "SELECT user_id FROM storeroom_bus_peer_names WHERE org_id = $1 AND name = $2",
      [identity.orgId, name],
    );
    return row?.user_id === owner;
  }

  /** The names of one org (or of every org), by org then name. */
  async list(orgId?: string): Promise<PeerNameOwner[]> {
    const rows =
      orgId === undefined
        ? await this.#db.all<Row>("SELECT * FROM storeroom_bus_peer_names ORDER BY org_id, name")
        : await this.#db.all<Row>("SELECT * FROM storeroom_bus_peer_names WHERE org_id = $1 ORDER BY name", [orgId]);
    return rows.map(toOwner);
  }

  /** Gives `name` to `userId` (or to the org itself when undefined), replacing any owner. */
  async assign(orgId: string, name: string, userId: string | undefined): Promise<PeerNameOwner> {
    checkName(name);
    const createdAt = this.#clock.now();
    await this.#db.run(
      `INSERT INTO storeroom_bus_peer_names (org_id, name, user_id, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (org_id, name) DO UPDATE SET user_id = excluded.user_id, created_at = excluded.created_at`,
      [orgId, name, userId ?? "", createdAt],
    );
    return toOwner({ org_id: orgId, name, user_id: userId ?? "", created_at: createdAt });
  }

  /** Frees `name`, so the next identity to register it owns it. Unknown name -> NotFoundError. */
  async release(orgId: string, name: string): Promise<void> {
    const { changes } = await this.#db.run("DELETE FROM storeroom_bus_peer_names WHERE org_id = $1 AND name = $2", [
      orgId,
      name,
    ]);
    if (changes === 0)
      throw new NotFoundError(`no bus peer name "${name}" in org ${orgId}`, { op: "server.peer_names" });
  }
}

function checkName(name: string): void {
  if (name === "" || name === "*" || name.includes("\u0000") || Buffer.byteLength(name) > MAX_PEER_NAME_BYTES) {
    throw new InvalidArgumentError(`a peer name is 1-${MAX_PEER_NAME_BYTES} bytes, not "*" and without NUL`, {
      op: "server.peer_names",
    });
  }
}

function toOwner(row: Row): PeerNameOwner {
  return Object.freeze({
    orgId: row.org_id,
    name: row.name,
    ...(row.user_id === "" ? {} : { userId: row.user_id }),
    createdAt: Number(row.created_at),
  });
}
