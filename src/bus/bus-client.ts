import type WebSocket from "ws";
import { systemClock } from "../clock.js";
import { ClosedError, InvalidArgumentError, StoreError } from "../errors.js";
import { LruMap } from "../internal/lru-map.js";
import { clockOption, functionOption, nonEmptyString, positiveInteger } from "../internal/option-checks.js";
import { backoffDelay } from "./backoff.js";
import type { BusClientOptions } from "./bus-client-options.js";
import { BusDeliveryError } from "./bus-delivery-error.js";
import { corkUntilNextTick } from "./cork-until-next-tick.js";
import { newMessageId } from "./message-id.js";
import { BusCloseCode } from "./wire/close-codes.js";
import { BROADCAST, decodedCanonical, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./wire/envelope.js";
import { checkEnvelopeHmac, hmacSecretOption, sealEnvelope } from "./wire/envelope-hmac.js";
import { type DecodedBody, parseFastFrame } from "./wire/fast-frame.js";
import { type DeliverFrame, encodeFrame, parseFrameScanned, peekDeliveryKey } from "./wire/frames.js";
import { WireError } from "./wire/wire-error.js";
import { decodeWireText, replaceRawBytes } from "./wire/wire-text.js";
import { loadWs } from "./ws-module.js";

/**
 * Largest frame the client reads: a deliver frame wraps an envelope of up to 1 MiB in a
 * delivery key, and a frame it cannot read would close the connection and come back on every
 * reconnect.
 */
const MAX_INCOMING_BYTES = 4 * MAX_FRAME_BYTES;

/**
 * True for a close after which reconnecting cannot help: 1008 (peerbus's policy violations:
 * bad token, name claimed, unsupported version...), 1003, storeroom's older 4400-4499 codes,
 * and a 1007 or 1009 answering the handshake itself.
 */
function isRejection(code: number, registered: boolean): boolean {
  if (code === BusCloseCode.policyViolation || code === BusCloseCode.unsupportedData) return true;
  if (code >= 4400 && code <= 4499) return true;
  return !registered && (code === BusCloseCode.invalidPayload || code === BusCloseCode.tooBig);
}

/** The broker refused this client for good (bad token, name claimed under another token, ...). */
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
  /** The shutdown {@link BusClient.close} started; later calls wait for the same one. */
  #closing: Promise<void> | undefined;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Deliveries (and undecodable frames) not handled yet, in arrival order. */
  readonly #inbox: (() => Promise<void> | undefined)[] = [];
  /** True while #work goes through the inbox. */
  #working = false;
  /** Resolved each time the inbox runs empty (close waits for it). */
  #emptied: (() => void)[] = [];
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #peerWaiters: { resolve: (names: string[]) => void; reject: (err: unknown) => void }[] = [];
  #fatal: BusRejectedError | undefined;
  readonly #key: Buffer;

  constructor(options: BusClientOptions) {
    this.#key = hmacSecretOption(options.hmacSecret, OP);
    this.#o = resolveOptions(options);
    this.#seen = new LruMap(this.#o.dedupeSize);
  }

  /** True while registered with the broker. */
  get connected(): boolean {
    return this.#registered;
  }

  /**
   * Starts connecting (and reconnecting after drops) and resolves once registered. Rejects with
   * {@link BusRejectedError} when the broker refuses the registration (close code 1008, 1003,
   * 4400-4499, or 1007 / 1009 in answer to the handshake): that is final, reported to `onError`
   * too, and every later call rejects with it. Rejects with {@link ClosedError} after
   * {@link BusClient.close}.
   */
  connect(): Promise<void> {
    try {
      loadWs();
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#ws === undefined && this.#timer === undefined && !this.#closed) this.#dial();
    return this.#ready();
  }

  /**
   * Signs and sends a direct message; waits for a registered connection first. Returns the
   * envelope id. Throws {@link InvalidArgumentError} for a `to` that is empty or `"*"` (use
   * {@link BusClient.broadcast}), an empty `id` or one with U+0000, a body that does not
   * serialize to JSON, a field with a lone surrogate, or an envelope over 1 MiB.
   */
  send(to: string, body: unknown, options: { id?: string } = {}): Promise<string> {
    return this.#sendEnvelope(to, "msg", body, options.id);
  }

  /** Signs and sends a broadcast to every other registered peer. Returns the envelope id. */
  broadcast(body: unknown, options: { id?: string } = {}): Promise<string> {
    return this.#sendEnvelope(BROADCAST, "broadcast", body, options.id);
  }

  /** The names of the peers connected to the broker. */
  async peers(): Promise<string[]> {
    await this.#ready();
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#peerWaiters = this.#peerWaiters.filter((w) => w !== waiter);
        reject(new StoreError("TIMEOUT", "no peers reply from the broker", { op: "bus.client.peers" }));
      }, this.#o.peersTimeoutMs);
      const waiter = {
        resolve: (names: string[]) => {
          clearTimeout(timer);
          resolve(names);
        },
        reject: (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#peerWaiters.push(waiter);
      this.#ws?.send(encodeFrame({ type: "peers" }));
    });
  }

  /**
   * Stops reconnecting and closes the connection. Deliveries that arrive from now on are not
   * handed over (the broker keeps them); the ones already queued are handled and acked first,
   * so closing loses no ack. Pending {@link BusClient.connect}, `send` and
   * {@link BusClient.peers} calls reject with {@link ClosedError} at once. Idempotent: every
   * call resolves once the connection is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#failWaiters(new ClosedError("bus client is closed", { op: "bus.client" }));
    if (this.#working) await new Promise<void>((resolve) => this.#emptied.push(resolve));
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState !== ws.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1000, "client closing");
      });
    }
  }

  #sendEnvelope(
    to: string,
    kind: "msg" | "broadcast",
    body: unknown,
    id: string = newMessageId(this.#o.clock.now()),
  ): Promise<string> {
    let frame: string;
    try {
      frame = this.#seal(to, kind, body, id);
    } catch (err) {
      return Promise.reject(err);
    }
    // Registered (the usual case): the frame goes out now, one promise per message.
    const ws = this.#ws;
    if (this.#registered && !this.#closed && ws !== undefined && ws.readyState === ws.OPEN) {
      return this.#write(ws, frame, id);
    }
    return this.#sendWhenRegistered(frame, id);
  }

  #seal(to: string, kind: "msg" | "broadcast", body: unknown, id: string): string {
    const op = "bus.client.send";
    // What every broker refuses, refused here, where the caller can still be told.
    if (kind === "msg" && (typeof to !== "string" || to === "" || to === BROADCAST)) {
      throw new InvalidArgumentError(
        `to must be a peer name (a non-empty string other than "${BROADCAST}"; use broadcast() for every peer), got ${JSON.stringify(to) ?? String(to)}`,
        { op },
      );
    }
    if (typeof id !== "string" || id === "" || id.includes("\u0000")) {
      throw new InvalidArgumentError("id must be a non-empty string without U+0000", { op });
    }
    let text: string | undefined;
    try {
      text = body === undefined ? "null" : JSON.stringify(body);
    } catch (cause) {
      throw new InvalidArgumentError(`the body does not serialize to JSON: ${(cause as Error).message}`, { op, cause });
    }
    if (text === undefined) throw new InvalidArgumentError("the body does not serialize to JSON", { op });
    const { frame } = sealEnvelope(
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
      this.#key,
    );
    if (frame.length > MAX_FRAME_BYTES / 3 && Buffer.byteLength(frame) > MAX_FRAME_BYTES) {
      throw new InvalidArgumentError(`the envelope exceeds ${MAX_FRAME_BYTES} bytes`, { op });
    }
    return frame;
  }

  async #sendWhenRegistered(frame: string, id: string): Promise<string> {
    for (;;) {
      await this.#ready();
      const ws = this.#ws;
      if (ws === undefined || ws.readyState !== ws.OPEN) {
        // Registered but closing: let the close event land, then wait for the next registration.
        await new Promise<void>((resolve) => {
          if (ws === undefined || ws.readyState === ws.CLOSED) setImmediate(resolve);
          else ws.once("close", () => resolve());
        });
        continue;
      }
      return this.#write(ws, frame, id);
    }
  }

  /** Resolves with `id` once the frame was handed to the socket, rejects if that failed. */
  #write(ws: WebSocket, frame: string, id: string): Promise<string> {
    corkUntilNextTick(ws);
    return new Promise<string>((resolve, reject) => ws.send(frame, (err) => (err ? reject(err) : resolve(id))));
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
    // Go brokers relay bytes that are not UTF-8 inside JSON strings; ws would close such frames with 1007.
    const { WebSocket } = loadWs();
    const ws = new WebSocket(this.#o.url, {
      maxPayload: MAX_INCOMING_BYTES,
      headers: this.#o.headers,
      skipUTF8Validation: true,
    });
    this.#ws = ws;
    ws.on("open", () => ws.send(encodeFrame({ type: "register", token: this.#o.token, name: this.#o.name })));
    ws.on("message", (data, isBinary) => {
      if (!isBinary)
        this.#onFrame(ws, decodeWireText(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[])).text);
    });
    ws.on("error", () => {}); // A "close" always follows; reconnecting is decided there.
    ws.on("close", (code, reason) => this.#onClose(ws, code, reason.toString("utf8")));
  }

  #onFrame(ws: WebSocket, text: string): void {
    let frame: ReturnType<typeof parseFrameScanned>;
    const decoded: DecodedBody = {};
    try {
      frame = parseFastFrame(text, decoded) ?? parseFrameScanned(text);
    } catch (err) {
      const key = peekDeliveryKey(text);
      const failed = new BusDeliveryError(
        err instanceof WireError ? err.reason : "malformed",
        `a frame from the broker does not decode: ${(err as Error).message}`,
        text,
        key,
      );
      // In line with the deliveries before it, so the ack keeps its place.
      this.#enqueue(() => this.#reject(ws, failed));
      return;
    }
    if (frame.type === "peers") {
      if (!this.#registered && ws === this.#ws) {
        this.#registered = true;
        this.#attempt = 0;
        for (const w of this.#waiters.splice(0)) w.resolve();
        return;
      }
      for (const w of this.#peerWaiters.splice(0)) w.resolve(frame.names === undefined ? [] : [...frame.names]);
    } else if (frame.type === "deliver" && !this.#closed) {
      this.#enqueue(() => this.#handle(ws, frame as DeliverFrame, text, decoded));
    } else if (frame.type === "error") {
      this.#report(new WireError(frame.code, `broker refused a frame: ${frame.message}`));
    }
  }

  /**
   * Runs inbox tasks in order: at once while each finishes synchronously (a handler that returns
   * no promise), else after the promise of the one before settled.
   */
  #enqueue(task: () => Promise<void> | undefined): void {
    this.#inbox.push(task);
    if (!this.#working) this.#work();
  }

  #work(): void {
    this.#working = true;
    for (let i = 0; i < this.#inbox.length; i++) {
      const pending = (this.#inbox[i] as () => Promise<void> | undefined)();
      if (pending !== undefined) {
        // Done tasks go, so a stream that never runs dry holds only what is still to do.
        this.#inbox.splice(0, i + 1);
        // Tasks report their own faults: this only resumes.
        const resume = () => this.#work();
        void pending.then(resume, resume);
        return;
      }
    }
    this.#inbox.length = 0;
    this.#working = false;
    for (const resolve of this.#emptied.splice(0)) resolve();
  }

  /** Verifies and hands over one delivery, then acks it; a promise only while a handler's promise is pending. */
  #handle(ws: WebSocket, frame: DeliverFrame, text: string, decoded: DecodedBody): Promise<void> | undefined {
    const env = frame.envelope;
    const mac = checkEnvelopeHmac(env, this.#key, decodedCanonical(env));
    if (mac !== "valid") {
      const why =
        mac === "unverifiable" ? "was signed over bytes that are not UTF-8" : "has an HMAC that does not verify";
      const failed = new BusDeliveryError(
        mac === "unverifiable" ? "unverifiable" : "bad_hmac",
        `dropped message "${env.id}": it ${why}`,
        text,
        frame.deliveryKey,
      );
      return this.#reject(ws, failed);
    }
    if (this.#seen.has(env.id)) return this.#ackDelivery(ws, frame.deliveryKey);
    let handled: Promise<void> | void;
    try {
      handled = this.#o.onMessage({
        id: env.id,
        from: env.from,
        to: env.to,
        kind: env.kind as "msg" | "broadcast",
        body: "value" in decoded ? decoded.value : JSON.parse(replaceRawBytes(env.body)),
        envelope: env,
        deliveryKey: frame.deliveryKey,
      });
    } catch (err) {
      this.#report(err);
      return undefined;
    }
    if (!isPromiseLike(handled)) return this.#handled(ws, env.id, frame.deliveryKey);
    return Promise.resolve(handled).then(
      () => this.#handled(ws, env.id, frame.deliveryKey),
      (err: unknown) => this.#report(err),
    );
  }

  /** After the handler succeeded: remember the id, ack the delivery. */
  #handled(ws: WebSocket, id: string, deliveryKey: string): undefined {
    this.#seen.set(id, true);
    return this.#ackDelivery(ws, deliveryKey);
  }

  #ackDelivery(ws: WebSocket, deliveryKey: string): undefined {
    if (ws.readyState !== ws.OPEN) return undefined;
    corkUntilNextTick(ws);
    ws.send(encodeFrame({ type: "ack", id: deliveryKey }));
    return undefined;
  }

  /** Reports a delivery that cannot be handed over, and acks it so it is not delivered again. */
  #reject(ws: WebSocket, failed: BusDeliveryError): undefined {
    this.#report(failed);
    if (failed.deliveryKey !== undefined && ws.readyState === ws.OPEN) {
      ws.send(encodeFrame({ type: "ack", id: failed.deliveryKey }));
    }
    return undefined;
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    const registered = this.#registered;
    this.#ws = undefined;
    this.#registered = false;
    if (this.#closed) return;
    if (isRejection(code, registered)) {
      this.#fatal = new BusRejectedError(code, reason);
      this.#failWaiters(this.#fatal);
      this.#report(this.#fatal);
      return;
    }
    const delay = backoffDelay(this.#attempt++, this.#o.minBackoffMs, this.#o.maxBackoffMs);
    this.#timer = setTimeout(() => this.#dial(), delay);
  }

  /** Rejects what waits for a registration or for a peers reply: neither comes any more. */
  #failWaiters(err: unknown): void {
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const w of this.#peerWaiters.splice(0)) w.reject(err);
  }

  #report(err: unknown): void {
    (this.#o.onError ?? console.error)(err);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

const OP = "bus.client.create";

function headersOption(headers: unknown): Record<string, string> {
  if (headers === undefined) return {};
  if (
    headers === null ||
    typeof headers !== "object" ||
    Array.isArray(headers) ||
    Object.values(headers).some((value) => typeof value !== "string")
  ) {
    throw new InvalidArgumentError("headers must be an object of header names to string values", { op: OP });
  }
  return headers as Record<string, string>;
}

/** The broker's URL, checked as the WebSocket client will read it, so `connect()` cannot fail on it later. */
function urlOption(value: unknown): string {
  const url = nonEmptyString(value, "url", OP);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`url must be a ws:// or wss:// URL, got ${JSON.stringify(url)}`, { op: OP });
  }
  if (!["ws:", "wss:", "http:", "https:", "ws+unix:"].includes(parsed.protocol)) {
    throw new InvalidArgumentError(`url must be a ws:// or wss:// URL, got ${JSON.stringify(url)}`, { op: OP });
  }
  if (parsed.hash !== "" || url.includes("#")) {
    throw new InvalidArgumentError(`url must not have a fragment (#...), got ${JSON.stringify(url)}`, { op: OP });
  }
  return url;
}

/** Validated options with their defaults; an option given as `undefined` takes its default. */
function resolveOptions(
  options: BusClientOptions,
): Required<Omit<BusClientOptions, "onError">> & Pick<BusClientOptions, "onError"> {
  const minBackoffMs = positiveInteger(options.minBackoffMs, "minBackoffMs", OP, 100);
  const maxBackoffMs = positiveInteger(options.maxBackoffMs, "maxBackoffMs", OP, Math.max(5000, minBackoffMs));
  if (maxBackoffMs < minBackoffMs) {
    throw new InvalidArgumentError(
      `maxBackoffMs must be at least minBackoffMs (${minBackoffMs}), got ${maxBackoffMs}`,
      {
        op: OP,
      },
    );
  }
  return {
    url: urlOption(options.url),
    name: nonEmptyString(options.name, "name", OP),
    token: nonEmptyString(options.token, "token", OP),
    hmacSecret: options.hmacSecret,
    onMessage: functionOption(options.onMessage, "onMessage", OP, true) as BusClientOptions["onMessage"],
    onError: functionOption(options.onError, "onError", OP),
    dedupeSize: positiveInteger(options.dedupeSize, "dedupeSize", OP, 4096),
    minBackoffMs,
    maxBackoffMs,
    source: options.source === undefined ? "storeroom" : nonEmptyString(options.source, "source", OP),
    peersTimeoutMs: positiveInteger(options.peersTimeoutMs, "peersTimeoutMs", OP, 5000),
    clock: clockOption(options.clock, OP, systemClock),
    headers: headersOption(options.headers),
  };
}
