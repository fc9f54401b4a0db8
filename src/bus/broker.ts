import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { WebSocket, WebSocketServer } from "ws";
import { BackgroundJob, checkIntervalMs } from "../background-job.js";
import { ClosedError, InvalidArgumentError } from "../errors.js";
import {
  booleanOption,
  clockOption,
  functionOption,
  objectOption,
  positiveInteger,
} from "../internal/option-checks.js";
import { type Accepted, ackOp, attachOp, drainOp, type SendOutcome, sendOp } from "./broker-ops.js";
import type { BrokerOptions } from "./broker-options.js";
import { CommitPipeline } from "./commit-pipeline.js";
import { DeliveryLane } from "./delivery-lane.js";
import type { MessageStore } from "./message-store.js";
import { peerbusSocketClass } from "./peerbus-socket.js";
import { BusClose, type BusCloseFrame } from "./wire/close-codes.js";
import {
  BROADCAST,
  checkDeliverable,
  checkEnvelope,
  decodedCanonical,
  type Envelope,
  encodeEnvelope,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
} from "./wire/envelope.js";
import { checkEnvelopeHmac, hmacSecretOption } from "./wire/envelope-hmac.js";
import {
  type AckFrame,
  type EnvelopeFrame,
  encodeFrame,
  type Frame,
  parseFrame,
  parseRegister,
} from "./wire/frames.js";
import { WireError } from "./wire/wire-error.js";
import { decodeWireText, wireBytes } from "./wire/wire-text.js";
import { loadWs } from "./ws-module.js";

/** A parsed frame, or the reason a frame could not be parsed. */
type Incoming = Frame | { readonly type: "invalid"; readonly error: WireError };

/** A frame as received: its text (see {@link decodeWireText}), or `null` for a binary frame. */
type Received = string | null;

/** How long a stored name binding outlives its peer's last connection by default. */
const DEFAULT_BINDING_TTL_MS = 7 * 24 * 3600 * 1000;

/** How long acked rows are kept for duplicate detection by default. */
const DEFAULT_ACKED_RETENTION_MS = 3600 * 1000;
/** Time between prune runs by default. */
const DEFAULT_PRUNE_INTERVAL_MS = 60_000;
/** Acked rows deleted per statement: short transactions that never hold writers back for long. */
const PRUNE_BATCH = 1000;

/** Frames a connection's inbox holds before its socket is no longer read (until half of them are handled). */
const INBOX_HIGH_WATER = 2048;
/** Frames a pump parses at a time: the commits of one take stay a few, and later frames wait unparsed. */
const INBOX_TAKE = 1024;

/** Messages per commit at most, by default. */
const DEFAULT_MAX_COMMIT_BATCH = 256;
const OP = "bus.broker.create";

interface Connection {
  readonly ws: WebSocket;
  /** The registered name, once the handshake completed. */
  name: string | undefined;
  /** The name this connection holds in the registry, from the moment its claim was accepted, with its lane. */
  claim: DeliveryLane | undefined;
  /** Digest of the token the claim was made with. */
  tokenHash: string | undefined;
  /** Frames not handled yet, in arrival order. */
  readonly inbox: Received[];
  /** True while a pump works through `inbox`; one pump per connection keeps frames in order. */
  pumping: boolean;
  /** True while the socket is not read because `inbox` is full. */
  paused: boolean;
  /** What the mounting server passed to `handleUpgrade` (e.g. the authenticated caller). */
  readonly context: unknown;
  /** True once the first frame went to the handshake. */
  handshakeSeen: boolean;
}

const UNVERIFIABLE =
  "the envelope's HMAC covers a string field that was not valid UTF-8, which no receiver can reproduce: send valid UTF-8";

/**
 * The peerbus v1 broker: a WebSocket server that authenticates peers by static bearer token,
 * persists every message before delivering it, routes direct and broadcast messages,
 * redelivers unacked messages on reconnect and writes `send` / `deliver` / `ack` audit rows.
 * Frames are decoded as Go's `encoding/json` decodes them and answered with peerbus's close
 * codes and reasons (docs/bus.md).
 *
 * As peerbus by default, a name is bound to its token while a connection holds it and a
 * broadcast reaches the peers connected now; stored bindings that expire and durable broadcast
 * copies for recently seen peers are options. Beyond peerbus: acks only touch the acking peer's
 * rows; an envelope whose HMAC does not verify, or whose `from` is not the sender's registered
 * name, is refused with an error frame.
 *
 * @example
 * ```ts
 * const broker = new Broker({ store, audit, tokens: ["t0ken"], hmacSecret });
 * const { port } = await broker.listen({ host: "127.0.0.1", port: 47821 });
 * // or mount it: httpServer.on("upgrade", (req, socket, head) => broker.handleUpgrade(req, socket, head));
 * ```
 */
export class Broker {
  readonly #store: MessageStore;
  readonly #options: BrokerOptions;
  readonly #tokenHashes: ReadonlySet<string>;
  readonly #key: Buffer;
  readonly #maxFrameBytes: number;
  readonly #wss: WebSocketServer;
  readonly #registry = new Map<string, Connection>();
  readonly #connections = new Set<Connection>();
  readonly #pipeline: CommitPipeline;
  readonly #maxCommitBatch: number;
  readonly #work = new Set<Promise<unknown>>();
  readonly #pruneJob: BackgroundJob<number>;
  #pruned = 0;
  #server: Server | undefined;
  #closed = false;
  /** The shutdown {@link Broker.close} started; later calls wait for the same one. */
  #closing: Promise<void> | undefined;

  constructor(options: BrokerOptions) {
    this.#key = hmacSecretOption(options.hmacSecret, OP);
    functionOption(options.authenticate, "authenticate", OP);
    functionOption(options.authorizeRegistration, "authorizeRegistration", OP);
    functionOption(options.onError, "onError", OP);
    booleanOption(options.persistentBindings, "persistentBindings", OP, false);
    const clock = options.clock === undefined ? undefined : clockOption(options.clock, OP, options.clock);
    if (options.tokens !== undefined && !Array.isArray(options.tokens)) {
      throw new InvalidArgumentError("tokens must be an array of non-empty strings", { op: OP });
    }
    if (options.authenticate === undefined && (options.tokens === undefined || options.tokens.length === 0)) {
      throw new InvalidArgumentError("tokens must hold at least one token (or give an authenticate function)", {
        op: OP,
      });
    }
    if ((options.tokens ?? []).some((t) => typeof t !== "string" || t.length === 0)) {
      throw new InvalidArgumentError("tokens must be non-empty strings", { op: OP });
    }
    // Infinity is meaningful for these (bindings and broadcast copies that never expire).
    for (const key of ["bindingTtlMs", "broadcastWindowMs", "ackedRetentionMs"] as const) {
      const value = options[key];
      if (value !== undefined && !(typeof value === "number" && value >= 0)) {
        throw new InvalidArgumentError(`${key} must be a non-negative number of ms, got ${value}`, { op: OP });
      }
    }
    // A timer delay: Node.js would run a longer one after 1 ms.
    checkIntervalMs(options.commitWindowMs, "commitWindowMs", OP, 0);
    const maxCommitBatch = positiveInteger(options.maxCommitBatch, "maxCommitBatch", OP, DEFAULT_MAX_COMMIT_BATCH);
    const pruneIntervalMs = checkIntervalMs(options.pruneIntervalMs, "pruneIntervalMs", OP, DEFAULT_PRUNE_INTERVAL_MS);
    objectOption(options.store, "store", OP, "a MessageStore", ["transaction", "markSeen", "pruneAcked"]);
    if (options.audit !== undefined) objectOption(options.audit, "audit", OP, "an AuditLog", ["appendMany"]);
    this.#maxCommitBatch = maxCommitBatch;
    this.#pipeline = new CommitPipeline({
      transaction: (fn) => options.store.transaction(fn),
      audit: options.audit,
      windowMs: options.commitWindowMs ?? 0,
      maxWeight: maxCommitBatch,
      onError: (err) => this.#report(err),
    });
    this.#options = options;
    this.#store = options.store;
    const retentionMs = options.ackedRetentionMs ?? DEFAULT_ACKED_RETENTION_MS;
    this.#pruneJob = new BackgroundJob({
      name: "bus acked-message prune",
      intervalMs: pruneIntervalMs,
      clock,
      onError: (err) => this.#report(err),
      run: () => this.#prune(retentionMs),
    });
    this.#tokenHashes = new Set((options.tokens ?? []).map(tokenHash));
    // ws reads a maxPayload of 0 as "no limit".
    const maxPayload = positiveInteger(options.maxFrameBytes, "maxFrameBytes", OP, MAX_FRAME_BYTES);
    this.#maxFrameBytes = maxPayload;
    // Go peers put bytes that are not UTF-8 inside JSON strings; ws would close such frames with 1007.
    const ws = loadWs();
    this.#wss = new ws.WebSocketServer({
      noServer: true,
      maxPayload,
      skipUTF8Validation: true,
      WebSocket: peerbusSocketClass(ws.WebSocket, maxPayload),
    });
    this.#pruneJob.start();
  }

  /**
   * Starts an HTTP server of its own that accepts WebSocket upgrades on any path. Default
   * address 127.0.0.1:47821; pass `port: 0` for a free port. Resolves with the bound address.
   * Rejects with the server's error (e.g. `EADDRINUSE`), after which `listen` may be called
   * again, and with {@link ClosedError} once {@link Broker.close} was called.
   */
  async listen(options: { host?: string; port?: number } = {}): Promise<{ host: string; port: number }> {
    const op = "bus.listen";
    if (this.#closed) throw new ClosedError("the broker is closed", { op });
    if (this.#server !== undefined) throw new InvalidArgumentError("the broker is already listening", { op });
    const server = createServer((_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" }).end("peerbus v1: connect with a WebSocket\n");
    });
    server.on("upgrade", (req, socket, head) => this.handleUpgrade(req, socket, head));
    this.#server = server;
    const closedMeanwhile = () => new ClosedError("the broker was closed while it started listening", { op });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        // A server closed before it was listening never says "listening".
        server.once("close", () => reject(closedMeanwhile()));
        server.listen(options.port ?? 47821, options.host ?? "127.0.0.1", () => resolve());
      });
    } catch (err) {
      // Not listening (the port is taken, ...): a later listen() may try again.
      if (!this.#closed) this.#server = undefined;
      throw err;
    }
    // close() ran meanwhile and stops this server itself.
    if (this.#closed) throw closedMeanwhile();
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /**
   * Takes over an HTTP upgrade request from a server you run (mount the broker on a route;
   * authorise the request before calling). `context` is handed to
   * {@link BrokerOptions.authorizeRegistration} when the connection registers (e.g. the caller
   * your server authenticated). After {@link Broker.close} the socket is destroyed.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, context?: unknown): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, context));
  }

  /** Names of the peers connected right now, sorted by their UTF-8 bytes (as peerbus sorts them). */
  connectedPeers(): string[] {
    const names = [...this.#registry].flatMap(([name, conn]) => (conn.name === undefined ? [] : [name]));
    return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /**
   * Deletes the acked messages older than {@link BrokerOptions.ackedRetentionMs} now (after a
   * prune run in progress), in batches, and returns how many. The prune job calls it on its timer.
   */
  pruneAcked(): Promise<number> {
    return this.#pruneJob.runOnce();
  }

  /** Acked messages deleted by the prune job since the broker was created. */
  get prunedAcked(): number {
    return this.#pruned;
  }

  /**
   * Stops accepting connections, closes every connection (1001 "server shutting down"), waits for the frames and
   * drains in progress, and stops its own HTTP server. Idempotent: every call resolves once all
   * of that is done. The store stays open.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    await this.#pruneJob.stop();
    for (const name of this.connectedPeers())
      await this.#store.markSeen(name).catch((err: unknown) => this.#report(err));
    for (const conn of this.#connections) conn.ws.close(BusClose.shuttingDown.code, BusClose.shuttingDown.reason);
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
    await this.#pipeline.drained();
    this.#wss.close();
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(ws: WebSocket, context: unknown): void {
    const conn: Connection = {
      ws,
      name: undefined,
      inbox: [],
      pumping: false,
      paused: false,
      handshakeSeen: false,
      context,
      claim: undefined,
      tokenHash: undefined,
    };
    this.#connections.add(conn);
    ws.on("message", (data, isBinary) => {
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
      conn.inbox.push(isBinary ? null : decodeWireText(bytes).text);
      // A peer sending faster than its frames commit waits in its socket, not in this heap.
      if (conn.inbox.length >= INBOX_HIGH_WATER && !conn.paused) {
        conn.paused = true;
        ws.pause();
      }
      if (!conn.pumping) {
        conn.pumping = true;
        void this.#track(this.#pump(conn));
      }
    });
    ws.on("close", () => {
      this.#connections.delete(conn);
      const name = conn.claim?.name;
      if (name === undefined || !this.#release(conn)) return;
      // close() marks every peer seen itself, before the store may go away.
      if (conn.name !== undefined && !this.#closed) void this.#track(this.#store.markSeen(name));
    });
    ws.on("error", () => ws.terminate());
  }

  /**
   * Handles the connection's frames in arrival order, one commit at a time. Frames that queued
   * up meanwhile are taken together: a run of consecutive envelopes (up to `maxCommitBatch`) or
   * acks is one op of the commit pipeline, which also groups the ops of other connections.
   */
  async #pump(conn: Connection): Promise<void> {
    try {
      while (conn.inbox.length > 0) {
        const name = conn.name;
        if (name === undefined) {
          // Frames after a refused handshake mean nothing: the connection is closing.
          if (conn.handshakeSeen || conn.ws.readyState !== conn.ws.OPEN) return;
          conn.handshakeSeen = true;
          await this.#register(conn, conn.inbox.shift() as Received).catch((err: unknown) => {
            if (conn.ws.readyState === conn.ws.OPEN) {
              conn.ws.close(BusClose.persistenceFailed.code, BusClose.persistenceFailed.reason);
            }
            this.#report(err);
          });
          continue;
        }
        const frames = this.#parseAll(conn.inbox.splice(0, INBOX_TAKE));
        if (conn.paused && conn.inbox.length < INBOX_HIGH_WATER / 2) this.#resume(conn);
        for (let i = 0; i < frames.length; ) {
          const frame = frames[i] as Incoming;
          let j = i;
          while (j < frames.length && j - i < this.#maxCommitBatch && frames[j]?.type === frame.type) j++;
          const run = frames.slice(i, j);
          i = j;
          // Frames that arrived before a close are still handled: their sender was authenticated.
          try {
            const handled = this.#handleRun(conn, name, frame.type, run);
            if (handled !== undefined) await handled;
          } catch (err) {
            this.#report(err);
          }
        }
      }
    } finally {
      conn.pumping = false;
      // A pump that stops early (a refused handshake) must not leave the close frame unread.
      if (conn.paused) this.#resume(conn);
    }
  }

  #resume(conn: Connection): void {
    conn.paused = false;
    conn.ws.resume();
  }

  /** Handles one run of frames of a type; the promise (if any) settles once its commit did. */
  #handleRun(conn: Connection, name: string, type: Incoming["type"], run: Incoming[]): Promise<void> | undefined {
    if (type === "envelope") {
      return this.#route(
        conn,
        name,
        run.map((f) => (f as EnvelopeFrame).envelope),
      );
    }
    if (type === "ack") {
      return this.#ack(
        name,
        run.map((f) => (f as AckFrame).id),
      );
    }
    if (type === "invalid") {
      for (const f of run) this.#sendError(conn, (f as { error: WireError }).error);
    } else if (type === "peers" && conn.ws.readyState === conn.ws.OPEN) {
      for (const _ of run) conn.ws.send(encodeFrame({ type: "peers", names: this.connectedPeers() }));
    }
    // A repeated register, a deliver or an error from a client carry no meaning (peerbus ignores them).
    return undefined;
  }

  /**
   * Parses frames after the handshake; binary frames are ignored (peerbus ignores them), a bad
   * one gets an error frame in its place.
   */
  #parseAll(received: Received[]): Incoming[] {
    const frames: Incoming[] = [];
    for (const text of received) {
      if (text === null) continue;
      try {
        frames.push(parseFrame(text));
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        // Keep the order: the error frame goes out when the pump reaches this position.
        frames.push({ type: "invalid", error: err });
      }
    }
    return frames;
  }

  /** The register handshake, with peerbus's close code and reason for each refusal. */
  async #register(conn: Connection, first: Received): Promise<void> {
    const ws = conn.ws;
    const refuse = (close: BusCloseFrame) => ws.close(close.code, close.reason);
    if (first === null) return refuse(BusClose.handshakeNotText);
    let frame: ReturnType<typeof parseRegister>;
    try {
      frame = parseRegister(first);
    } catch {
      return refuse(BusClose.malformedHandshake);
    }
    if (frame.type !== "register") return refuse(BusClose.notRegister);
    if (frame.protocolVersion !== PROTOCOL_VERSION) {
      return refuse(BusClose.unsupportedVersion);
    }
    const name = frame.name;
    if (name.length === 0) return refuse(BusClose.emptyName);
    if (name === BROADCAST || name.includes("\u0000")) {
      return refuse(BusClose.invalidName);
    }
    if (!(await this.#authenticate(frame.token))) return refuse(BusClose.badToken);
    const authorize = this.#options.authorizeRegistration;
    // A name another identity owns is refused as peerbus refuses a claimed name, so its clients pick another.
    if (authorize !== undefined && (await authorize(name, conn.context)) !== true) return refuse(BusClose.nameClaimed);
    // Claimed synchronously, so of two registrations racing for a name only one gets it.
    const hash = tokenHash(frame.token);
    const holder = this.#registry.get(name);
    if (holder !== undefined && holder.tokenHash !== hash) return refuse(BusClose.nameClaimed);
    const lane = new DeliveryLane(name, ws);
    conn.claim = lane;
    conn.tokenHash = hash;
    this.#registry.set(name, conn);
    // A takeover tears the old connection down without a close frame, as peerbus does.
    holder?.ws.terminate();
    const persistent = this.#options.persistentBindings === true;
    const bind = persistent
      ? { tokenHash: hash, expireAfterMs: this.#options.bindingTtlMs ?? DEFAULT_BINDING_TTL_MS }
      : undefined;
    const result = { claimed: false };
    try {
      // Through the pipeline, so the unacked rows are requeued after every commit that sent to a previous connection.
      await this.#pipeline.submit(attachOp(this.#store, name, bind, result));
    } catch (err) {
      this.#release(conn);
      refuse(BusClose.persistenceFailed);
      throw err;
    }
    if (result.claimed) {
      this.#release(conn);
      return refuse(BusClose.nameClaimed);
    }
    if (!lane.open || this.#registry.get(name) !== conn) return;
    conn.name = name;
    lane.attached = true;
    ws.send(encodeFrame({ type: "peers", names: this.connectedPeers() }));
    this.#kick(lane);
  }

  /** Frees the connection's claim unless another connection took the name over; true when it was freed. */
  #release(conn: Connection): boolean {
    const name = conn.claim?.name;
    if (name === undefined || this.#registry.get(name) !== conn) return false;
    this.#registry.delete(name);
    return true;
  }

  async #route(conn: Connection, sender: string, envs: Envelope[]): Promise<void> {
    const accepted: Accepted[] = [];
    for (const env of envs) {
      try {
        checkEnvelope(env);
        checkDeliverable(env);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        this.#sendError(conn, err, env.id || undefined);
        continue;
      }
      const canonical = decodedCanonical(env);
      const mac = checkEnvelopeHmac(env, this.#key, canonical);
      if (mac === "unverifiable") {
        this.#sendError(conn, new WireError("unverifiable", UNVERIFIABLE), env.id);
      } else if (mac !== "valid") {
        this.#sendError(conn, new WireError("bad_hmac", "the envelope's HMAC does not verify"), env.id);
      } else if (env.from !== sender) {
        this.#sendError(
          conn,
          new WireError("sender_mismatch", `"from" must be the registered name "${sender}"`),
          env.id,
        );
      } else accepted.push({ env, bytes: wireBytes(encodeEnvelope(env, canonical)) });
    }
    if (accepted.length === 0) return;
    const everyone = accepted.some((a) => a.env.to === BROADCAST) ? await this.#broadcastRecipients(sender) : [];
    const outcome: SendOutcome = { unknownPeer: [], tooBig: [] };
    const lanes = (name: string) => this.#registry.get(name)?.claim;
    try {
      await this.#pipeline.submit(
        sendOp(
          this.#store,
          lanes,
          (lane) => this.#kick(lane),
          sender,
          accepted,
          everyone,
          this.#maxFrameBytes,
          outcome,
        ),
      );
    } catch (err) {
      for (const { env } of accepted) {
        this.#sendError(conn, new WireError("internal", "the message could not be stored"), env.id);
      }
      throw err;
    }
    for (const env of outcome.unknownPeer)
      this.#sendError(conn, new WireError("unknown_peer", `unknown peer "${env.to}"`), env.id);
    for (const env of outcome.tooBig) {
      this.#sendError(
        conn,
        new WireError("undeliverable", "the deliver frame would exceed the frame size limit"),
        env.id,
      );
    }
  }

  #ack(name: string, ids: string[]): Promise<void> | undefined {
    const valid = ids.filter((id) => id.length > 0 && !id.includes("\u0000"));
    return valid.length > 0 ? this.#pipeline.submit(ackOp(this.#store, name, valid)) : undefined;
  }

  /** Starts a drain of `lane` unless one runs (then that one goes round once more). */
  #kick(lane: DeliveryLane): void {
    if (!lane.attached || !lane.open) return;
    if (lane.draining) {
      lane.again = true;
      return;
    }
    lane.draining = true;
    void this.#track(this.#drain(lane));
  }

  /** Sends `lane` its pending rows a page per commit; each page waits until the previous one left the process. */
  async #drain(lane: DeliveryLane): Promise<void> {
    try {
      for (;;) {
        lane.again = false;
        const page = { full: false, last: Promise.resolve() };
        await this.#pipeline.submit(drainOp(this.#store, lane, page));
        await page.last;
        if (!lane.open || (!page.full && !lane.again)) return;
      }
    } finally {
      lane.draining = false;
    }
  }

  /** The peers connected now plus, with a broadcast window, those seen within it; never the sender. */
  async #broadcastRecipients(sender: string): Promise<string[]> {
    const names = new Set(this.connectedPeers());
    const window = this.#options.broadcastWindowMs ?? 0;
    if (window > 0) for (const name of await this.#store.peersSeenWithin(window)) names.add(name);
    names.delete(sender);
    return [...names];
  }

  async #authenticate(token: string): Promise<boolean> {
    if (this.#options.authenticate !== undefined) return (await this.#options.authenticate(token)) === true;
    return this.#tokenHashes.has(tokenHash(token));
  }

  #sendError(conn: Connection, err: WireError, id?: string): void {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(
      encodeFrame({ type: "error", code: err.reason, message: err.message, ...(id === undefined ? {} : { id }) }),
    );
  }

  async #prune(retentionMs: number): Promise<number> {
    if (!Number.isFinite(retentionMs)) return 0;
    let total = 0;
    for (;;) {
      const n = await this.#store.pruneAcked(retentionMs, { limit: PRUNE_BATCH });
      total += n;
      this.#pruned += n;
      if (n < PRUNE_BATCH || this.#closed) return total;
    }
  }

  #report(err: unknown): void {
    (this.#options.onError ?? console.error)(err);
  }

  #track(work: Promise<void>): Promise<void> {
    // One reaction instead of catch + finally: this runs for every frame that starts a pump.
    const tracked: Promise<void> = work.then(
      () => {
        this.#work.delete(tracked);
      },
      (err: unknown) => {
        this.#work.delete(tracked);
        this.#report(err);
      },
    );
    this.#work.add(tracked);
    return tracked;
  }
}

/** The stored and compared form of a token: its SHA-256, so the database never holds tokens. */
function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}
