import { randomUUID } from "node:crypto";
import { type Clock, systemClock } from "../clock.js";
import { AccessDeniedError, ClosedError, DuplicateIdError, InvalidArgumentError, UnknownPeerError } from "../errors.js";
import { booleanOption, clockOption, databaseInstance, positiveInteger } from "../internal/option-checks.js";
import type { Database, Executor, ExecutorOptions, SqlValue } from "../sql/index.js";
import { type BusMessage, type BusPeer, checkBusName, type EnqueueOutcome, type NewBusMessage } from "./bus-message.js";
import { busMigrations } from "./bus-migrations.js";
import { fixedChunks, inLists, placeholderList, placeholderRows, textPerSize } from "./sql-lists.js";

// A commit of many messages inserts them (and acks them) in one statement per chunk.
const insertMessages = textPerSize(
  (size) => `INSERT INTO bus_messages (id, sender, recipient, envelope, seq, ts, delivered, attempts)
           VALUES ${placeholderRows(size, 8)} ON CONFLICT (id) DO NOTHING`,
);
const seqsOf = textPerSize((size) => `SELECT id, sender, seq FROM bus_messages WHERE id IN (${placeholderList(size)})`);
// "acked <> 1", not "acked = 0": it keeps the lookup on the primary key instead of a scan of the
// recipient's unacked rows.
const ackWhere = (size: number) => `WHERE id IN (${placeholderList(size, 3)}) AND recipient = $1 AND acked <> 1`;
const ackMessages = textPerSize(
  (size) => `UPDATE bus_messages SET acked = 1, delivered = 1, acked_at = $2 ${ackWhere(size)}`,
);
const ackMessagesReturning = textPerSize(
  (size) => `UPDATE bus_messages SET acked = 1, delivered = 1, acked_at = $2 ${ackWhere(size)} RETURNING id`,
);

/** Thrown inside a savepoint to roll it back (see {@link MessageStore.ackFor}). */
const NOT_EVERY_ID = Symbol("not every id was acked now");

/** Options of {@link MessageStore.open}. */
export interface MessageStoreOptions {
  /** The database holding the `bus_*` tables (SQLite or PostgreSQL). The caller keeps ownership. */
  database: Database;
  /** Source of row timestamps (ms). Default {@link systemClock}. */
  clock?: Clock;
  /** Apply the `bus` migrations on open. Default `true`. */
  migrate?: boolean;
}

/** Options of {@link MessageStore.markAcked} and {@link MessageStore.markDelivered}. */
export interface MarkOptions extends ExecutorOptions {
  /** Only touch rows addressed to this recipient (a broker passes the acking peer). Default: any row. */
  recipient?: string;
}

/** Options of {@link MessageStore.bindToken}. */
export interface BindTokenOptions extends ExecutorOptions {
  /**
   * A binding whose peer was last seen (see {@link MessageStore.markSeen}) longer than this
   * many ms ago has expired: another token may take the name over. Default: bindings never expire.
   */
  expireAfterMs?: number;
}

/** Options of {@link MessageStore.pendingFor}. */
export interface PendingOptions extends ExecutorOptions {
  /** At most this many rows (still per-sender FIFO: the earliest of each sender come first). Default: all. */
  limit?: number;
}

/** Options of {@link MessageStore.enqueueMany}. */
export interface EnqueueManyOptions extends ExecutorOptions {
  /**
   * Recipients the caller knows are registered (their registration committed; peers are never
   * deleted), so they are not looked up. A name given here that is not registered gets its
   * message stored anyway. Default: every recipient is looked up.
   */
  registered?: ReadonlySet<string>;
}

/** Seqs {@link MessageStore.enqueueMany} reserves for a sender at a time. */
const SEQ_BLOCK = 1024;
/** Senders whose blocks a store remembers; the oldest is forgotten (it then reserves anew). */
const MAX_SEQ_BLOCKS = 4096;

/** Rows {@link MessageStore.pruneAcked} deletes per statement by default. */
const DEFAULT_PRUNE_LIMIT = 1000;

type MessageRow = {
  id: string;
  sender: string;
  recipient: string;
  envelope: Uint8Array;
  delivered: number;
  acked: number;
  attempts: number;
  seq: number | string;
  ts: number | string;
};

/**
 * peerbus's durable message queue over any {@link Database}: at-least-once, dedupe by message
 * id, per-sender FIFO (no global order). A message for an offline recipient is a row with
 * `delivered = false`; a delivered but unacked one is requeued when its recipient reconnects.
 *
 * Every method is async and throws {@link ClosedError} after {@link MessageStore.close}.
 *
 * @example
 * ```ts
 * const store = await MessageStore.open({ database: await openSqlite("bus.db") });
 * await store.register({ name: "bob" });
 * await store.enqueue({ id: "m1", from: "alice", to: "bob", envelope: Buffer.from("{}") });
 * const pending = await store.pendingFor("bob");
 * await store.markDelivered(pending.map((m) => m.id));
 * await store.markAcked("m1");
 * ```
 */
export class MessageStore {
  readonly #db: Database;
  readonly #clock: Clock;
  /** Names this store in `bus_sender_seq.holder` when it reserves a block of a sender's seqs. */
  readonly #holder = randomUUID();
  /** Per sender, the block of seqs this store reserved last: the next seq to hand out and the block's end. */
  readonly #seqBlocks = new Map<string, { next: number; end: number }>();
  #closed = false;

  private constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Migrates the `bus` set (unless `migrate: false`) and returns a store. */
  static async open(options: MessageStoreOptions): Promise<MessageStore> {
    const op = "bus.open";
    const database = databaseInstance(options.database, "database", op);
    const clock = clockOption(options.clock, op, systemClock);
    if (booleanOption(options.migrate, "migrate", op, true)) await database.migrate(busMigrations);
    return new MessageStore(database, clock);
  }

  /**
   * The database this store writes to.
   * @deprecated Use {@link MessageStore.transaction} to group store calls; keep your own
   * reference to the database you passed to {@link MessageStore.open}.
   */
  get database(): Database {
    return this.#db;
  }

  /**
   * Runs `fn` in one transaction of the store's database, so several store calls given
   * `{ executor: tx }` commit or roll back together. Commits when `fn` resolves; rolls back and
   * rethrows when it rejects.
   *
   * @example
   * ```ts
   * await store.transaction(async (tx) => {
   *   await store.enqueue({ id: "m1", from: "a", to: "b", envelope }, { executor: tx });
   *   await store.enqueue({ id: "m2", from: "a", to: "c", envelope }, { executor: tx });
   * });
   * ```
   */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
    this.#assertOpen("bus.transaction");
    return this.#db.transaction(fn);
  }

  /**
   * Records a peer. Idempotent: registering again refreshes `registered` and `lastSeen` and
   * keeps `firstSeen`. Throws {@link InvalidArgumentError} for an empty name, a name with
   * U+0000, or `"*"` (the broadcast address).
   */
  async register(peer: { name: string }, options: ExecutorOptions = {}): Promise<void> {
    const name = this.#peerName(peer?.name, "bus.register");
    const now = this.#now();
    await (options.executor ?? this.#db).run(
      `INSERT INTO bus_peers (name, registered, first_seen, last_seen) VALUES ($1, $2, $2, $2)
       ON CONFLICT (name) DO UPDATE SET registered = excluded.registered, last_seen = excluded.last_seen`,
      [name, now],
    );
  }

  /**
   * Registers `name` and binds it to `tokenHash` (a digest of the bearer token, never the
   * token) in one transaction. The binding survives restarts; binding again with the same hash
   * is a no-op, and with `expireAfterMs` an expired binding is replaced. Throws
   * {@link AccessDeniedError} when the name is bound to another token; nothing changes then.
   * With `{ executor }` it runs in the caller's transaction.
   */
  async bindToken(name: string, tokenHash: string, options: BindTokenOptions = {}): Promise<void> {
    const op = "bus.bindToken";
    const peer = this.#peerName(name, op);
    checkBusName(tokenHash, "token hash", op);
    const expireAfterMs = options.expireAfterMs;
    if (expireAfterMs !== undefined && !(typeof expireAfterMs === "number" && expireAfterMs >= 0)) {
      throw new InvalidArgumentError(`expireAfterMs must be a non-negative number, got ${String(expireAfterMs)}`, {
        op,
      });
    }
    const now = this.#now();
    const expiredBefore = expireAfterMs === undefined ? null : this.#since(expireAfterMs);
    const refused = () => new AccessDeniedError(`peer "${peer}" is bound to another token`, { op });
    await this.#inTransaction(options.executor, async (tx) => {
      // Checked before writing, so a refusal changes nothing even inside the caller's transaction.
      const held = await tx.get<{ token_hash: string | null; last_seen: number | string | null }>(
        "SELECT token_hash, last_seen FROM bus_peers WHERE name = $1",
        [peer],
      );
      const live = expiredBefore === null || Number(held?.last_seen) >= expiredBefore;
      if (held?.token_hash != null && held.token_hash !== tokenHash && live) throw refused();
      const row = await tx.get<{ token_hash: string | null }>(
        `INSERT INTO bus_peers (name, registered, first_seen, last_seen, token_hash) VALUES ($1, $2, $2, $2, $3)
         ON CONFLICT (name) DO UPDATE SET registered = excluded.registered, last_seen = excluded.last_seen,
           token_hash = CASE WHEN bus_peers.token_hash IS NULL OR bus_peers.last_seen < $4
             THEN excluded.token_hash ELSE bus_peers.token_hash END
         RETURNING token_hash`,
        [peer, now, tokenHash, expiredBefore],
      );
      if (row?.token_hash !== tokenHash) throw refused();
    });
  }

  /** Records that `name` was seen connected now (a broker calls it when the peer disconnects). Unknown names are skipped. */
  async markSeen(name: string, options: ExecutorOptions = {}): Promise<void> {
    const peer = this.#peerName(name, "bus.markSeen");
    await (options.executor ?? this.#db).run("UPDATE bus_peers SET last_seen = $2 WHERE name = $1", [
      peer,
      this.#now(),
    ]);
  }

  /** Names of the peers seen within the last `windowMs` ms (see {@link BusPeer.lastSeen}), ordered by name. */
  async peersSeenWithin(windowMs: number): Promise<string[]> {
    const op = "bus.peersSeenWithin";
    this.#assertOpen(op);
    if (!(typeof windowMs === "number" && windowMs >= 0)) {
      throw new InvalidArgumentError(`windowMs must be a non-negative number, got ${String(windowMs)}`, { op });
    }
    const since = this.#since(windowMs);
    const rows = await this.#db.all<{ name: string }>(
      `SELECT name FROM bus_peers WHERE last_seen >= $1 ORDER BY name${this.#db.dialect.binaryCollation}`,
      [since],
    );
    return rows.map((r) => r.name);
  }

  /** Every registered peer, ordered by name (code point order on both engines). */
  async peers(): Promise<BusPeer[]> {
    this.#assertOpen("bus.peers");
    const rows = await this.#db.all<{
      name: string;
      registered: number | string;
      first_seen: number | string;
      last_seen: number | string;
    }>(
      `SELECT name, registered, first_seen, last_seen FROM bus_peers ORDER BY name${this.#db.dialect.binaryCollation}`,
    );
    return rows.map((r) => ({
      name: r.name,
      registered: Number(r.registered),
      firstSeen: Number(r.first_seen),
      lastSeen: Number(r.last_seen),
    }));
  }

  /**
   * Durably stores a message in one transaction: the recipient must be registered
   * ({@link UnknownPeerError}), an existing id throws {@link DuplicateIdError} and leaves that
   * row untouched, and the sender's next `seq` is allocated (row-locked on PostgreSQL, so
   * concurrent senders never share or reorder a seq). Returns the stored row. With
   * `{ executor: tx }` it runs inside the caller's transaction (as a savepoint).
   */
  async enqueue(message: NewBusMessage, options?: ExecutorOptions): Promise<BusMessage>;
  /** @deprecated Pass the executor as `{ executor }`. */
  async enqueue(message: NewBusMessage, executor: Executor): Promise<BusMessage>;
  async enqueue(message: NewBusMessage, options: ExecutorOptions | Executor = {}): Promise<BusMessage> {
    const op = "bus.enqueue";
    const executor = isExecutor(options) ? options : options.executor;
    this.#assertOpen(op);
    const id = checkBusName(message?.id, "message id", op);
    const from = checkBusName(message.from, "sender", op);
    const to = checkBusName(message.to, "recipient", op);
    if (!(message.envelope instanceof Uint8Array)) throw new InvalidArgumentError("envelope must be bytes", { op });
    const ts = this.#now();
    const work = async (tx: Executor): Promise<BusMessage> => {
      if ((await tx.get("SELECT 1 AS one FROM bus_peers WHERE name = $1", [to])) === undefined) {
        throw new UnknownPeerError(`unknown peer "${to}"`, { op });
      }
      if ((await tx.get("SELECT 1 AS one FROM bus_messages WHERE id = $1", [id])) !== undefined) {
        throw new DuplicateIdError(`message "${id}" already exists`, { op });
      }
      const next = await tx.get<{ seq: number | string }>(
        `INSERT INTO bus_sender_seq (sender, next) VALUES ($1, 1)
         ON CONFLICT (sender) DO UPDATE SET next = bus_sender_seq.next + 1
         RETURNING next - 1 AS seq`,
        [from],
      );
      const seq = Number(next?.seq);
      // A concurrent insert of the same id (PostgreSQL) waits here and then changes nothing.
      const inserted = await tx.run(
        `INSERT INTO bus_messages (id, sender, recipient, envelope, seq, ts) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING`,
        [id, from, to, message.envelope, seq, ts],
      );
      if (inserted.changes === 0) throw new DuplicateIdError(`message "${id}" already exists`, { op });
      return { id, from, to, envelope: message.envelope, delivered: false, acked: false, attempts: 0, seq, ts };
    };
    return executor === undefined ? this.#db.transaction(work) : executor.transaction(work);
  }

  /**
   * Stores messages the way {@link MessageStore.enqueue} stores one, in one transaction (or in
   * the caller's, with `{ executor }`), and reports each one's outcome instead of throwing: a
   * recipient never registered is `"unknown_peer"`, an id already stored (also earlier in the
   * same call) is `"duplicate"` and leaves that row untouched. A message with `delivered: true`
   * is stored as handed to a connection already (`attempts` 1): a broker that writes the frame
   * after the commit saves a statement per message. Seqs increase per sender in the order given
   * and across calls, but, unlike {@link MessageStore.enqueue}'s, they are not dense: the store
   * reserves them in blocks (then only reads the sender's counter row while its block lasts),
   * and a message found stored already by the insert skips its seq. Throws
   * {@link InvalidArgumentError} for a malformed message before storing any.
   */
  async enqueueMany(messages: readonly NewBusMessage[], options: EnqueueManyOptions = {}): Promise<EnqueueOutcome[]> {
    const op = "bus.enqueueMany";
    this.#assertOpen(op);
    if (!Array.isArray(messages)) throw new InvalidArgumentError("messages must be an array", { op });
    for (const m of messages) {
      checkBusName(m?.id, "message id", op);
      checkBusName(m.from, "sender", op);
      checkBusName(m.to, "recipient", op);
      if (!(m.envelope instanceof Uint8Array)) throw new InvalidArgumentError("envelope must be bytes", { op });
    }
    if (messages.length === 0) return [];
    const ts = this.#now();
    // A handful of statements per call, not per message: it is the broker's hot path.
    return this.#inTransaction(options.executor, async (tx) => {
      const outcomes: EnqueueOutcome[] = [];
      const known = options.registered;
      const lookUp = [...new Set(messages.flatMap((m) => (known?.has(m.to) === true ? [] : [m.to])))];
      const peers =
        lookUp.length === 0
          ? new Set<string>()
          : await this.#existing(tx, "SELECT name AS v FROM bus_peers WHERE name IN", lookUp);
      // No lookup of the ids: the insert skips those already stored and returns the others.
      const seen = new Set<string>();
      const fresh: NewBusMessage[] = [];
      const perSender = new Map<string, number>();
      for (const m of messages) {
        if (known?.has(m.to) !== true && !peers.has(m.to)) outcomes.push("unknown_peer");
        else if (seen.has(m.id)) outcomes.push("duplicate");
        else {
          seen.add(m.id);
          outcomes.push("stored");
          fresh.push(m);
          perSender.set(m.from, (perSender.get(m.from) ?? 0) + 1);
        }
      }
      // Senders and rows in one order in every transaction: on PostgreSQL a sender's counter row
      // and an id a concurrent transaction is inserting are waited for, and two transactions
      // taking them in different orders would deadlock (the server then aborts one).
      const nextSeq = new Map<string, number>();
      for (const sender of [...perSender.keys()].sort()) {
        nextSeq.set(sender, await this.#allocateSeqs(tx, sender, perSender.get(sender) as number));
      }
      // Seqs follow each sender's order of sending; the inserts then go in id order.
      const rows = fresh.map((m) => {
        const seq = nextSeq.get(m.from) as number;
        nextSeq.set(m.from, seq + 1);
        return { m, seq };
      });
      if (rows.length > 1) rows.sort((a, b) => (a.m.id < b.m.id ? -1 : a.m.id > b.m.id ? 1 : 0));
      // Ids of a chunk that inserted fewer rows than it had: the others were stored before.
      const skipped = new Set<string>();
      let at = 0;
      for (const size of fixedChunks(fresh.length)) {
        const chunk = rows.slice(at, at + size).map((r) => r.m);
        const params: SqlValue[] = [];
        for (let j = at; j < at + size; j++) {
          const { m, seq } = rows[j] as { m: NewBusMessage; seq: number };
          const delivered = m.delivered === true ? 1 : 0;
          params.push(m.id, m.from, m.to, m.envelope, seq, ts, delivered, delivered);
        }
        at += size;
        // A concurrent insert of the same id (PostgreSQL) waits here and then changes nothing.
        const { changes } = await tx.run(insertMessages(size), params);
        if (changes === size) continue;
        // Rare: find which rows are ours. A sender's seqs are never handed out twice, so a row
        // with this chunk's sender and seq for its id was inserted now; any other was there before.
        const stored = await tx.all<{ id: string; sender: string; seq: number | string }>(
          seqsOf(size),
          chunk.map((m) => m.id),
        );
        const byId = new Map(stored.map((r) => [r.id, r]));
        chunk.forEach((m, j) => {
          const row = byId.get(m.id);
          if (row === undefined || row.sender !== m.from || Number(row.seq) !== params[8 * j + 4]) skipped.add(m.id);
        });
      }
      let k = 0;
      return outcomes.map((o) => {
        if (o !== "stored") return o;
        const m = fresh[k++] as NewBusMessage;
        return skipped.has(m.id) ? "duplicate" : o;
      });
    });
  }

  /**
   * The first of `count` consecutive seqs of `sender`. They come from the block this store
   * reserved last while that block is still the sender's latest reservation (its counter row
   * still ends there and names this store): checked with a read that row-locks the counter on
   * PostgreSQL, so no other store reserves or allocates meanwhile, and no page is written.
   * Otherwise a new block is reserved by an upsert. A block whose reservation rolled back, or
   * that another store (or {@link MessageStore.enqueue}) moved past, fails the check; seqs of a
   * transaction that rolls back are skipped, never handed out twice.
   */
  async #allocateSeqs(tx: Executor, sender: string, count: number): Promise<number> {
    const block = this.#seqBlocks.get(sender);
    if (block !== undefined && block.end - block.next >= count) {
      const row = await tx.get<{ next: number | string; holder: string | null }>(
        `SELECT next, holder FROM bus_sender_seq WHERE sender = $1${tx.dialect.forUpdate}`,
        [sender],
      );
      if (row !== undefined && Number(row.next) === block.end && row.holder === this.#holder) {
        const first = block.next;
        block.next += count;
        return first;
      }
    }
    const size = Math.max(count, SEQ_BLOCK);
    const row = await tx.get<{ first: number | string }>(
      `INSERT INTO bus_sender_seq (sender, next, holder) VALUES ($1, $2, $3)
       ON CONFLICT (sender) DO UPDATE SET next = bus_sender_seq.next + $2, holder = $3
       RETURNING next - $2 AS first`,
      [sender, size, this.#holder],
    );
    const first = Number(row?.first);
    this.#seqBlocks.delete(sender);
    if (this.#seqBlocks.size >= MAX_SEQ_BLOCKS) this.#seqBlocks.delete(this.#seqBlocks.keys().next().value as string);
    this.#seqBlocks.set(sender, { next: first + count, end: first + size });
    return first;
  }

  /** Which of `values` the single-column `select ... IN` finds. */
  async #existing(tx: Executor, select: string, values: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const list of inLists(values)) {
      const rows = await tx.all<{ v: string }>(`${select} (${placeholderList(list.length)})`, list);
      for (const r of rows) found.add(r.v);
    }
    return found;
  }

  /**
   * The undelivered, unacked messages for `name`, ordered by sender, then `seq`: each
   * sender's stream is FIFO, there is no order across senders. Empty when nothing is queued.
   * Throws {@link UnknownPeerError} when `name` was never registered.
   */
  async pendingFor(name: string, options: PendingOptions = {}): Promise<BusMessage[]> {
    const op = "bus.pendingFor";
    this.#assertOpen(op);
    checkBusName(name, "peer name", op);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new InvalidArgumentError("limit must be a positive integer", { op });
    }
    const executor = options.executor ?? this.#db;
    const c = executor.dialect.binaryCollation;
    const rows = await executor.all<MessageRow>(
      `SELECT id, sender, recipient, envelope, delivered, acked, attempts, seq, ts FROM bus_messages
       WHERE recipient = $1 AND delivered = 0 AND acked = 0
       ORDER BY sender${c}, seq${limit === undefined ? "" : ` LIMIT ${limit}`}`,
      [name],
    );
    if (rows.length === 0) await this.#assertPeer(name, op, executor);
    return rows.map(toMessage);
  }

  /** Number of messages not yet delivered (and not acked) to any recipient: the backlog, for metrics. */
  async countUndelivered(): Promise<number> {
    this.#assertOpen("bus.countUndelivered");
    const row = await this.#db.get<{ n: number | string }>(
      "SELECT count(*) AS n FROM bus_messages WHERE delivered = 0 AND acked = 0",
    );
    return Number(row?.n ?? 0);
  }

  /** One message by id, or `undefined`. */
  async get(id: string): Promise<BusMessage | undefined> {
    this.#assertOpen("bus.get");
    const row = await this.#db.get<MessageRow>(
      "SELECT id, sender, recipient, envelope, delivered, acked, attempts, seq, ts FROM bus_messages WHERE id = $1",
      [id],
    );
    return row === undefined ? undefined : toMessage(row);
  }

  /**
   * The latest `limit` messages (1..1000, default 50), newest first (by enqueue time, then id),
   * delivered or not: a tail of the bus for inspection.
   */
  async recent(limit = 50): Promise<BusMessage[]> {
    const op = "bus.recent";
    this.#assertOpen(op);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new InvalidArgumentError(`limit must be an integer in 1..1000, got ${limit}`, { op });
    }
    const rows = await this.#db.all<MessageRow>(
      `SELECT id, sender, recipient, envelope, delivered, acked, attempts, seq, ts FROM bus_messages
       ORDER BY ts DESC, id${this.#db.dialect.binaryCollation} DESC LIMIT $1`,
      [limit],
    );
    return rows.map(toMessage);
  }

  /**
   * Marks messages delivered and bumps their attempt counters, in one transaction. Unknown ids
   * are skipped (at-least-once callers retry). Returns the number of rows changed.
   */
  async markDelivered(ids: string | readonly string[], options: MarkOptions = {}): Promise<number> {
    return this.#mark("bus.markDelivered", "delivered = 1, attempts = attempts + 1", ids, options);
  }

  /**
   * Marks messages acked (and delivered), in one transaction. An acked message is never
   * requeued or returned by {@link MessageStore.pendingFor} again, even when the ack arrives
   * after a requeue. Unknown ids are skipped. Returns the number of rows changed.
   */
  async markAcked(ids: string | readonly string[], options: MarkOptions = {}): Promise<number> {
    return this.#mark("bus.markAcked", "acked = 1, delivered = 1, acked_at = COALESCE(acked_at, $1)", ids, options, [
      this.#now(),
    ]);
  }

  /**
   * Acks, in one transaction, those of `ids` that are addressed to `recipient` and were not
   * acked yet, and returns exactly those ids, each once, in the order given (so a broker writes
   * one audit row per real ack, none for repeated or foreign acks).
   */
  async ackFor(recipient: string, ids: readonly string[], options: ExecutorOptions = {}): Promise<string[]> {
    const op = "bus.ackFor";
    this.#assertOpen(op);
    checkBusName(recipient, "recipient", op);
    if (!Array.isArray(ids)) throw new InvalidArgumentError("ids must be an array of message ids", { op });
    for (const id of ids) checkBusName(id, "message id", op);
    if (ids.length === 0) return [];
    const now = this.#now();
    // Statements take the ids in one sorted order in every transaction: on PostgreSQL two acks
    // locking the same rows chunk by chunk in different orders would deadlock.
    const sorted = [...new Set(ids)].sort();
    return this.#inTransaction(options.executor, async (tx) => {
      const fresh = new Set<string>();
      for (const list of inLists(sorted)) {
        const params = [recipient, now, ...list];
        const distinct = [...new Set(list)];
        if (distinct.length === 1) {
          // One id: the count alone says whether it was acked now (no savepoint needed).
          if ((await tx.run(ackMessages(list.length), params)).changes > 0) fresh.add(distinct[0] as string);
          continue;
        }
        // Usually every id is acked now: an update without RETURNING (cheaper per row) says so
        // by its count. Otherwise its savepoint rolls back and RETURNING tells which ones.
        const all = await tx
          .transaction(async (sp) => {
            if ((await sp.run(ackMessages(list.length), params)).changes !== distinct.length) throw NOT_EVERY_ID;
            return true;
          })
          .catch((err: unknown) => {
            if (err !== NOT_EVERY_ID) throw err;
            return false;
          });
        if (all) for (const id of distinct) fresh.add(id);
        else {
          const rows = await tx.all<{ id: string }>(ackMessagesReturning(list.length), params);
          for (const r of rows) fresh.add(r.id);
        }
      }
      const acked: string[] = [];
      for (const id of ids) {
        if (fresh.delete(id)) acked.push(id);
      }
      return acked;
    });
  }

  /**
   * Makes every delivered-but-unacked message for `name` pending again and returns how many.
   * Acked messages stay done. Throws {@link UnknownPeerError} for an unregistered name.
   */
  async requeueUnacked(name: string, options: ExecutorOptions = {}): Promise<number> {
    const op = "bus.requeueUnacked";
    this.#assertOpen(op);
    checkBusName(name, "peer name", op);
    return this.#inTransaction(options.executor, async (tx) => {
      await this.#assertPeer(name, op, tx);
      const { changes } = await tx.run(
        "UPDATE bus_messages SET delivered = 0 WHERE recipient = $1 AND delivered = 1 AND acked = 0",
        [name],
      );
      return changes;
    });
  }

  /**
   * Deletes at most `limit` (default 1000) messages acked more than `retentionMs` ago, in one
   * statement (an index range scan on the ack time), and returns how many. Rows not acked are
   * never deleted, nor is the audit log touched. A message id re-sent after its row was pruned
   * is stored and delivered again: duplicate detection of acked messages lasts `retentionMs`.
   * Throws {@link InvalidArgumentError} for a negative or non-finite `retentionMs` or a `limit`
   * that is not a positive integer.
   */
  async pruneAcked(retentionMs: number, options: { limit?: number } = {}): Promise<number> {
    const op = "bus.pruneAcked";
    this.#assertOpen(op);
    if (typeof retentionMs !== "number" || !Number.isFinite(retentionMs) || retentionMs < 0) {
      throw new InvalidArgumentError(`retentionMs must be a non-negative finite number of ms, got ${retentionMs}`, {
        op,
      });
    }
    const limit = positiveInteger(options.limit, "limit", op, DEFAULT_PRUNE_LIMIT);
    const { changes } = await this.#db.run(
      `DELETE FROM bus_messages WHERE id IN
         (SELECT id FROM bus_messages WHERE acked_at < $1 ORDER BY acked_at LIMIT $2)`,
      [this.#since(retentionMs), limit],
    );
    return changes;
  }

  /** Marks the store closed; later calls throw {@link ClosedError}. The database stays open (its owner closes it). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  /** `set` may use `$1..$n` for `setParams`; the scope and ids take the placeholders after them. */
  async #mark(
    op: string,
    set: string,
    ids: string | readonly string[],
    options: MarkOptions,
    setParams: SqlValue[] = [],
  ): Promise<number> {
    this.#assertOpen(op);
    if (typeof ids !== "string" && !Array.isArray(ids)) {
      throw new InvalidArgumentError("ids must be a message id or an array of them", { op });
    }
    // One sorted order in every transaction, so concurrent marks never lock rows in opposite orders.
    const list = typeof ids === "string" ? [ids] : [...new Set(ids)].sort();
    for (const id of list) checkBusName(id, "message id", op);
    if (list.length === 0) return 0;
    const recipient = options.recipient;
    const statement = async (tx: Executor, chunk: string[]): Promise<number> => {
      const first = setParams.length + 1;
      const scope = recipient === undefined ? "" : `recipient = $${first} AND `;
      const marks = placeholderList(chunk.length, recipient === undefined ? first : first + 1);
      const params = recipient === undefined ? [...setParams, ...chunk] : [...setParams, recipient, ...chunk];
      const { changes } = await tx.run(`UPDATE bus_messages SET ${set} WHERE ${scope}id IN (${marks})`, params);
      return changes;
    };
    const lists = inLists(list);
    if (lists.length === 1) return statement(options.executor ?? this.#db, lists[0] as string[]);
    return this.#inTransaction(options.executor, async (tx) => {
      let total = 0;
      for (const chunk of lists) total += await statement(tx, chunk);
      return total;
    });
  }

  /** Runs `work` in the caller's transaction when given one (no savepoint: it throws only before writing), else in a transaction of its own. */
  #inTransaction<T>(executor: Executor | undefined, work: (tx: Executor) => Promise<T>): Promise<T> {
    return executor === undefined ? this.#db.transaction(work) : work(executor);
  }

  /** The clock's time in whole ms: the time columns are BIGINT on PostgreSQL, which refuses a fraction. */
  #now(): number {
    return Math.floor(this.#clock.now());
  }

  /**
   * The earliest time within the last `windowMs` ms, in whole ms (for integer times `t >= now - w`
   * holds exactly when `t >= ceil(now - w)`), and never below what a BIGINT parameter holds: a
   * window reaching back further than any time simply covers them all.
   */
  #since(windowMs: number): number {
    const since = this.#clock.now() - windowMs;
    return Number.isFinite(since) && since > Number.MIN_SAFE_INTEGER ? Math.ceil(since) : Number.MIN_SAFE_INTEGER;
  }

  #peerName(name: unknown, op: string): string {
    this.#assertOpen(op);
    const checked = checkBusName(name, "peer name", op);
    if (checked === "*") throw new InvalidArgumentError('"*" is the broadcast address, not a peer name', { op });
    return checked;
  }

  async #assertPeer(name: string, op: string, executor: Executor = this.#db): Promise<void> {
    if ((await executor.get("SELECT 1 AS one FROM bus_peers WHERE name = $1", [name])) === undefined) {
      throw new UnknownPeerError(`unknown peer "${name}"`, { op });
    }
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new ClosedError("message store is closed", { op });
  }
}

function toMessage(r: MessageRow): BusMessage {
  return {
    id: r.id,
    from: r.sender,
    to: r.recipient,
    envelope: r.envelope,
    delivered: Number(r.delivered) === 1,
    acked: Number(r.acked) === 1,
    attempts: Number(r.attempts),
    seq: Number(r.seq),
    ts: Number(r.ts),
  };
}

/** Tells the deprecated positional executor of `enqueue` from its options object. */
function isExecutor(value: ExecutorOptions | Executor): value is Executor {
  return typeof (value as Partial<Executor>).transaction === "function" && "dialect" in value;
}
