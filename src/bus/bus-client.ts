import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { systemClock } from "../clock.js";
import { ClosedError, StoreError } from "../errors.js";
import { LruMap } from "../internal/lru-map.js";
import { backoffDelay } from "./backoff.js";
import { BusCloseCode } from "./broker-options.js";
import type { BusClientOptions } from "./bus-client-options.js";
import { BROADCAST, type Envelope, encodeEnvelope, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./wire/envelope.js";
import { hmacKey, signEnvelope, verifyEnvelope } from "./wire/envelope-hmac.js";
import { type DeliverFrame, encodeFrame, parseFrame } from "./wire/frames.js";
import { WireError } from "./wire/wire-error.js";

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  BusCloseCode.badRegister,
  BusCloseCode.badToken,
  BusCloseCode.nameTaken,
  BusCloseCode.replaced,
]);

/** The broker refused this client for good (bad token, name taken, replaced by another connection). */
export class BusRejectedError extends StoreError {
  /** The WebSocket close code. */
  readonly closeCode: number;
  constructor(closeCode: number, reason: string) {
    super("ACCESS_DENIED", `broker refused the connection (${closeCode}): ${reason}`, { op: "bus.client" });
    this.closeCode = closeCode;
  }
}

/**
 * A peerbus v1 client: connects, registers, reconnects with jittered exponential backoff
 * (100 ms to 5 s), verifies every delivery's HMAC, hands each message id to `onMessage` once
 * (LRU dedupe) and acks only after the handler resolved.
 *
 * @example
 * ```ts
 * const bob = new BusClient({ url, name: "bob", token, hmacSecret, onMessage: async (m) => console.log(m.body) });
 * await bob.connect();
 * await bob.send("alice", { text: "hi" });
 * await bob.close();
 * ```
 */
export class BusClient {
  readonly #o: Required<Omit<BusClientOptions, "onError">> & Pick<BusClientOptions, "onError">;
  readonly #seen: LruMap<string, true>;
  #ws: WebSocket | undefined;
  #registered = false;
  #closed = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #inbox: Promise<void> = Promise.resolve();
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #peerWaiters: ((names: string[]) => void)[] = [];
  #fatal: BusRejectedError | undefined;

  constructor(options: BusClientOptions) {
    hmacKey(options.hmacSecret);
    this.#o = {
      dedupeSize: 4096,
      minBackoffMs: 100,
      maxBackoffMs: 5000,
      source: "storeroom",
      peersTimeoutMs: 5000,
      clock: systemClock,
      headers: {},
      ...options,
    };
    this.#seen = new LruMap(this.#o.dedupeSize);
  }

  /** True while registered with the broker. */
  get connected(): boolean {
    return this.#registered;
  }

  /**
   * Starts connecting (and reconnecting after drops) and resolves once registered. Rejects with
   * {@link BusRejectedError} when the broker refuses the token or name, and with
   * {@link ClosedError} after {@link BusClient.close}.
   */
  connect(): Promise<void> {
    if (this.#ws === undefined && this.#timer === undefined && !this.#closed) this.#dial();
    return this.#ready();
  }

  /** Signs and sends a direct message; waits for a registered connection first. Returns the envelope id. */
  async send(to: string, body: unknown, options: { id?: string } = {}): Promise<string> {
    return this.#sendEnvelope(to, "msg", body, options.id);
  }

  /** Signs and sends a broadcast to every other registered peer. Returns the envelope id. */
  async broadcast(body: unknown, options: { id?: string } = {}): Promise<string> {
    return this.#sendEnvelope(BROADCAST, "broadcast", body, options.id);
  }

  /** The names of the peers connected to the broker. */
  async peers(): Promise<string[]> {
    await this.#ready();
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#peerWaiters = this.#peerWaiters.filter((w) => w !== done);
        reject(new StoreError("TIMEOUT", "no peers reply from the broker", { op: "bus.client.peers" }));
      }, this.#o.peersTimeoutMs);
      const done = (names: string[]) => {
        clearTimeout(timer);
        resolve(names);
      };
      this.#peerWaiters.push(done);
      this.#ws?.send(encodeFrame({ type: "peers" }));
    });
  }

  /** Stops reconnecting and closes the connection; waits for the message being handled. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#failWaiters(new ClosedError("bus client is closed", { op: "bus.client" }));
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1000, "client closing");
      });
    }
    await this.#inbox;
  }

  async #sendEnvelope(
    to: string,
    kind: "msg" | "broadcast",
    body: unknown,
    id: string = randomUUID(),
  ): Promise<string> {
    const text = body === undefined ? "null" : JSON.stringify(body);
    const env: Envelope = signEnvelope(
      {
        protocol_version: PROTOCOL_VERSION,
        id,
        from: this.#o.name,
        to,
        ts: new Date(this.#o.clock.now()).toISOString(),
        source: this.#o.source,
        kind,
        body: text,
      },
      this.#o.hmacSecret,
    );
    for (;;) {
      await this.#ready();
      const ws = this.#ws;
      if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
        // Registered but closing: let the close event land, then wait for the next registration.
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      await new Promise<void>((resolve, reject) =>
        ws.send(encodeEnvelope(env), (err) => (err ? reject(err) : resolve())),
      );
      return id;
    }
  }

  #ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError("bus client is closed", { op: "bus.client" }));
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    if (this.#registered) return Promise.resolve();
    if (this.#ws === undefined && this.#timer === undefined) this.#dial();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #dial(): void {
    this.#timer = undefined;
    const ws = new WebSocket(this.#o.url, { maxPayload: MAX_FRAME_BYTES, headers: this.#o.headers });
    this.#ws = ws;
    ws.on("open", () => ws.send(encodeFrame({ type: "register", token: this.#o.token, name: this.#o.name })));
    ws.on("message", (data, isBinary) => {
      if (!isBinary) this.#onFrame(ws, (data as Buffer).toString("utf8"));
    });
    ws.on("error", () => {}); // A "close" always follows; reconnecting is decided there.
    ws.on("close", (code, reason) => this.#onClose(ws, code, reason.toString("utf8")));
  }

  #onFrame(ws: WebSocket, text: string): void {
    let frame: ReturnType<typeof parseFrame>;
    try {
      frame = parseFrame(text);
    } catch (err) {
      this.#report(err);
      return;
    }
    if (frame.type === "peers") {
      if (!this.#registered && ws === this.#ws) {
        this.#registered = true;
        this.#attempt = 0;
        for (const w of this.#waiters.splice(0)) w.resolve();
        return;
      }
      for (const w of this.#peerWaiters.splice(0)) w(frame.names === undefined ? [] : [...frame.names]);
    } else if (frame.type === "deliver") {
      this.#inbox = this.#inbox.then(() => this.#handle(ws, frame as DeliverFrame));
    } else if (frame.type === "error") {
      this.#report(new WireError(frame.code, `broker refused a frame: ${frame.message}`));
    }
  }

  async #handle(ws: WebSocket, frame: DeliverFrame): Promise<void> {
    const env = frame.envelope;
    if (!verifyEnvelope(env, this.#o.hmacSecret)) {
      this.#report(new WireError("bad_hmac", `dropped message "${env.id}": its HMAC does not verify`));
      return;
    }
    if (!this.#seen.has(env.id)) {
      try {
        await this.#o.onMessage({
          id: env.id,
          from: env.from,
          to: env.to,
          kind: env.kind as "msg" | "broadcast",
          body: JSON.parse(env.body),
          envelope: env,
          deliveryKey: frame.deliveryKey,
        });
      } catch (err) {
        this.#report(err);
        return;
      }
      this.#seen.set(env.id, true);
    }
    if (ws.readyState === WebSocket.OPEN) ws.send(encodeFrame({ type: "ack", id: frame.deliveryKey }));
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    this.#registered = false;
    if (this.#closed) return;
    if (FATAL_CLOSE_CODES.has(code)) {
      this.#fatal = new BusRejectedError(code, reason);
      this.#failWaiters(this.#fatal);
      this.#report(this.#fatal);
      return;
    }
    const delay = backoffDelay(this.#attempt++, this.#o.minBackoffMs, this.#o.maxBackoffMs);
    this.#timer = setTimeout(() => this.#dial(), delay);
  }

  #failWaiters(err: unknown): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #report(err: unknown): void {
    (this.#o.onError ?? console.error)(err);
  }
}
