import type { Executor } from "../sql/index.js";
import { MigrationSet } from "../sql/index.js";

/** Table names the server itself keeps in the control database. */
export const SERVER_TABLES = Object.freeze({
  peerNames: "storeroom_bus_peer_names",
});

async function createPeerNames(tx: Executor): Promise<void> {
  // user_id '' stands for the org itself (a caller without a user id), so the key stays NOT NULL on both engines.
  await tx.run(`CREATE TABLE storeroom_bus_peer_names (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at ${tx.dialect.bigintType} NOT NULL,
    PRIMARY KEY (org_id, name)
  )`);
}

/**
 * The server's own control tables: who owns each bus peer name. Applied with the uploads and
 * bus sets by `migrateControlDatabase`.
 */
export const serverMigrations: MigrationSet = new MigrationSet("server").add({
  id: "server/001-bus-peer-names",
  up: createPeerNames,
});
