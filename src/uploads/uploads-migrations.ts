import type { Executor } from "../sql/index.js";
import { MigrationSet } from "../sql/index.js";

/** Table names of the uploads module (all prefixed `storeroom_`). */
export const UPLOADS_TABLES = Object.freeze({
  claims: "storeroom_upload_claims",
  parts: "storeroom_upload_parts",
  pendingDeletes: "storeroom_pending_deletes",
  deadLetters: "storeroom_delete_dead_letters",
  outbox: "storeroom_upload_outbox",
  offsets: "storeroom_upload_offsets",
});

async function createClaims(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE storeroom_upload_claims (
    id TEXT PRIMARY KEY,
    created_at ${big} NOT NULL,
    created_by TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    upload_id TEXT NOT NULL DEFAULT '',
    size ${big} NOT NULL,
    content_type TEXT NOT NULL,
    original_filename TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'uploaded')),
    public INTEGER NOT NULL DEFAULT 0,
    part_size ${big} NOT NULL,
    part_count INTEGER NOT NULL,
    expires_at ${big} NOT NULL
  )`);
  await tx.run("CREATE INDEX storeroom_upload_claims_expiry ON storeroom_upload_claims (expires_at, status)");
  await tx.run("CREATE INDEX storeroom_upload_claims_owner ON storeroom_upload_claims (created_by, status)");
}

async function createParts(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE storeroom_upload_parts (
    claim_id TEXT NOT NULL REFERENCES storeroom_upload_claims (id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    size ${big} NOT NULL,
    created_at ${big} NOT NULL,
    PRIMARY KEY (claim_id, part_number)
  )`);
}

async function createPendingDeletes(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE storeroom_pending_deletes (
    id TEXT PRIMARY KEY,
    object_key TEXT NOT NULL,
    upload_id TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at ${big} NOT NULL,
    created_at ${big} NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (object_key, reason)
  )`);
  await tx.run("CREATE INDEX storeroom_pending_deletes_due ON storeroom_pending_deletes (next_attempt_at)");
  await tx.run(`CREATE TABLE storeroom_delete_dead_letters (
    id TEXT PRIMARY KEY,
    object_key TEXT NOT NULL,
    upload_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    error_class TEXT NOT NULL,
    created_at ${big} NOT NULL,
    dead_at ${big} NOT NULL
  )`);
}

async function createOutbox(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE storeroom_upload_outbox (
    id ${tx.dialect.serialPrimaryKey},
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at ${big} NOT NULL,
    available_at ${big} NOT NULL,
    dispatched_at ${big}
  )`);
  await tx.run(
    "CREATE INDEX storeroom_upload_outbox_undispatched ON storeroom_upload_outbox (available_at, id) WHERE dispatched_at IS NULL",
  );
}

async function dueIndex(tx: Executor): Promise<void> {
  // Lease orders by (next_attempt_at, id); an index on both lets LIMIT stop early instead of sorting every due row.
  await tx.run("CREATE INDEX storeroom_pending_deletes_due_id ON storeroom_pending_deletes (next_attempt_at, id)");
  await tx.run("DROP INDEX storeroom_pending_deletes_due");
}

async function ownersAndResumable(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  // Who an event or a delete concerns, so event streams can be scoped to the caller's org.
  await tx.run("ALTER TABLE storeroom_pending_deletes ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
  await tx.run("ALTER TABLE storeroom_delete_dead_letters ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
  await tx.run("ALTER TABLE storeroom_upload_outbox ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
  // Delivery state of the dispatcher: events of one key go out in order; a failing one backs off, then dies.
  await tx.run("ALTER TABLE storeroom_upload_outbox ADD COLUMN event_key TEXT NOT NULL DEFAULT ''");
  await tx.run("ALTER TABLE storeroom_upload_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
  await tx.run("ALTER TABLE storeroom_upload_outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT ''");
  await tx.run(`ALTER TABLE storeroom_upload_outbox ADD COLUMN dead_at ${big}`);
  await tx.run(
    "CREATE INDEX storeroom_upload_outbox_key ON storeroom_upload_outbox (event_key, id) WHERE dispatched_at IS NULL",
  );
  await tx.run("CREATE INDEX storeroom_upload_outbox_dispatched ON storeroom_upload_outbox (dispatched_at)");
  // Offset-addressed uploads: bytes past the last whole part wait here until the part fills.
  await tx.run(`CREATE TABLE storeroom_upload_offsets (
    claim_id TEXT PRIMARY KEY REFERENCES storeroom_upload_claims (id) ON DELETE CASCADE,
    upload_offset ${big} NOT NULL,
    tail ${tx.dialect.blobType},
    metadata TEXT NOT NULL DEFAULT ''
  )`);
}

/** Who is appending to a resumable upload: a lease that keeps two processes from appending at once. */
async function appendLeases(tx: Executor): Promise<void> {
  await tx.run("ALTER TABLE storeroom_upload_offsets ADD COLUMN lease_holder TEXT");
  await tx.run(`ALTER TABLE storeroom_upload_offsets ADD COLUMN lease_expires_at ${tx.dialect.bigintType}`);
  await tx.run("ALTER TABLE storeroom_upload_offsets ADD COLUMN lease_wanted INTEGER NOT NULL DEFAULT 0");
}

/**
 * Delivery state per event and sink: each sink retries, backs off and dead-letters on its own,
 * so a failing sink never holds another back. An event is dispatched once every sink is done.
 */
async function sinkDeliveries(tx: Executor): Promise<void> {
  const big = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE storeroom_upload_deliveries (
    sink TEXT NOT NULL,
    event_id ${big} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    available_at ${big} NOT NULL,
    delivered_at ${big},
    dead_at ${big},
    PRIMARY KEY (sink, event_id)
  )`);
  await tx.run("CREATE INDEX storeroom_upload_deliveries_event ON storeroom_upload_deliveries (event_id)");
}

/**
 * The forward-only schema of the uploads module: claims, parts and offsets (cascading on claim
 * delete), pending deletes (unique on `(object_key, reason)`), dead letters and the event outbox.
 *
 * @example
 * ```ts
 * await db.migrate(uploadsMigrations);
 * ```
 */
export const uploadsMigrations: MigrationSet = new MigrationSet("uploads")
  .add({ id: "uploads/001-claims", up: createClaims })
  .add({ id: "uploads/002-parts", up: createParts })
  .add({ id: "uploads/003-pending-deletes", up: createPendingDeletes })
  .add({ id: "uploads/004-outbox", up: createOutbox })
  .add({ id: "uploads/005-due-index", up: dueIndex })
  .add({ id: "uploads/006-owners-and-offsets", up: ownersAndResumable })
  .add({ id: "uploads/007-append-leases", up: appendLeases })
  .add({ id: "uploads/008-sink-deliveries", up: sinkDeliveries });
