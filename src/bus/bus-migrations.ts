import type { Executor } from "../sql/index.js";
import { MigrationSet } from "../sql/index.js";

/**
 * The bus tables, prefixed `bus_` so they can share a database with other stores. Times are
 * milliseconds from the injected clock (peerbus used nanoseconds). Flags are INTEGER 0/1 on
 * both engines so the SQL is written once.
 */
export const busMigrations = new MigrationSet<Executor>("bus")
  .add({
    id: "bus/001-peers-messages",
    up: async (tx) => {
      const big = tx.dialect.bigintType;
      await tx.run(`CREATE TABLE bus_peers (
        name TEXT PRIMARY KEY,
        registered ${big} NOT NULL,
        first_seen ${big} NOT NULL,
        token_hash TEXT
      )`);
      await tx.run(`CREATE TABLE bus_messages (
        id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        envelope ${tx.dialect.blobType} NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        acked INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        seq ${big} NOT NULL,
        ts ${big} NOT NULL
      )`);
      await tx.run("CREATE INDEX bus_messages_pending ON bus_messages (recipient, delivered, sender, seq)");
      await tx.run(`CREATE TABLE bus_sender_seq (sender TEXT PRIMARY KEY, next ${big} NOT NULL)`);
    },
  })
  .add({
    id: "bus/002-audit",
    up: async (tx) => {
      await tx.run(`CREATE TABLE bus_audit (
        id ${tx.dialect.serialPrimaryKey},
        seq ${tx.dialect.bigintType} NOT NULL UNIQUE,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        event ${tx.dialect.blobType} NOT NULL,
        ts ${tx.dialect.bigintType} NOT NULL
      )`);
    },
  })
  .add({
    id: "bus/003-peers-last-seen",
    up: async (tx) => {
      // When the peer was last connected: bounds broadcast copies and expires stored name bindings.
      await tx.run(`ALTER TABLE bus_peers ADD COLUMN last_seen ${tx.dialect.bigintType}`);
      await tx.run("UPDATE bus_peers SET last_seen = registered");
    },
  })
  .add({
    id: "bus/004-pending-index-unacked-only",
    up: async (tx) => {
      // Acked rows leave the index: a reconnect's requeue and a drain's read no longer walk
      // every message a peer ever acked.
      await tx.run("DROP INDEX bus_messages_pending");
      await tx.run(
        "CREATE INDEX bus_messages_pending ON bus_messages (recipient, delivered, sender, seq) WHERE acked = 0",
      );
    },
  })
  .add({
    id: "bus/005-audit-keyed-by-seq",
    up: async (tx) => {
      // The chain position is the key: one B-tree per audit row instead of a serial key plus a
      // unique index on seq (on SQLite an INTEGER PRIMARY KEY is the rowid itself).
      const big = tx.dialect.bigintType;
      await tx.run(`CREATE TABLE bus_audit_by_seq (
        seq ${big} PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        event ${tx.dialect.blobType} NOT NULL,
        ts ${big} NOT NULL
      )`);
      await tx.run(
        "INSERT INTO bus_audit_by_seq (seq, prev_hash, hash, event, ts) SELECT seq, prev_hash, hash, event, ts FROM bus_audit",
      );
      await tx.run("DROP TABLE bus_audit");
      await tx.run("ALTER TABLE bus_audit_by_seq RENAME TO bus_audit");
    },
  })
  .add({
    id: "bus/006-acked-at",
    up: async (tx) => {
      // When a message was acked: acked rows are kept for a retention window (duplicate
      // detection) and then pruned by an index range scan on this column. Rows acked before
      // this migration count as acked when they were sent.
      await tx.run(`ALTER TABLE bus_messages ADD COLUMN acked_at ${tx.dialect.bigintType}`);
      await tx.run("UPDATE bus_messages SET acked_at = ts WHERE acked = 1");
      await tx.run("CREATE INDEX bus_messages_acked_at ON bus_messages (acked_at) WHERE acked_at IS NOT NULL");
    },
  })
  .add({
    id: "bus/007-sender-seq-holder",
    up: async (tx) => {
      // Which store reserved the sender's last block of seqs: while its block is still the
      // latest, that store allocates from it with a read of this row instead of a write.
      await tx.run("ALTER TABLE bus_sender_seq ADD COLUMN holder TEXT");
    },
  });
