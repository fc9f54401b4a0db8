import type { Executor } from "../sql/index.js";
import { MigrationSet } from "../sql/index.js";

/** Table names the server itself keeps in the control database. */
export const SERVER_TABLES = Object.freeze({
  peerNames: "storeroom_bus_peer_names",
  nodes: "storeroom_nodes",
  sharedSettings: "storeroom_shared_settings",
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

async function createNodes(tx: Executor): Promise<void> {
  // stopped_at 0 while the node runs.
  await tx.run(`CREATE TABLE storeroom_nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    public_url TEXT NOT NULL,
    started_at ${tx.dialect.bigintType} NOT NULL,
    heartbeat_at ${tx.dialect.bigintType} NOT NULL,
    stopped_at ${tx.dialect.bigintType} NOT NULL
  )`);
}

async function createSharedSettings(tx: Executor): Promise<void> {
  await tx.run(`CREATE TABLE storeroom_shared_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version ${tx.dialect.bigintType} NOT NULL,
    updated_at ${tx.dialect.bigintType} NOT NULL
  )`);
}

/**
 * The server's own control tables: who owns each bus peer name, the nodes sharing the control
 * database, and the settings they share (secrets, tokens). Applied with the uploads, bus and
 * tenants sets by `migrateControlDatabase`.
 */
export const serverMigrations: MigrationSet = new MigrationSet("server")
  .add({ id: "server/001-bus-peer-names", up: createPeerNames })
  .add({ id: "server/002-nodes", up: createNodes })
  .add({ id: "server/003-shared-settings", up: createSharedSettings });
