import { Agent, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { closingHeader, forwardingHeaders, signForwarding } from "./forwarded-identity.js";
import type { RequestIdentity } from "./identity.js";

/** `forwarded`: the owner answered (or the exchange failed after the request reached it); `unreachable`: nothing reached it. */
export type ForwardOutcome = "forwarded" | "unreachable";

/** Hop-by-hop headers: they describe one connection and are never forwarded. */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Methods a proxy may resend when the connection failed before any answer. */
const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** Errors after which a request without effects is sent again (a pooled connection the owner had closed). */
const resendable = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED"]);

/** Methods whose repetition has the effect of one request, sent again when a reused connection was cut before any answer. */
const idempotentMethods = new Set(["PUT", "DELETE"]);

/** Request headers that make a request's outcome depend on the state it finds (a repeat could be refused). */
const conditionalHeaders = ["if-match", "if-none-match", "if-unmodified-since"];

/**
 * True when a request cut on a reused keep-alive connection before any answer may be sent
 * again: an idempotent method without conditions. The owner closes its idle keep-alive
 * connections when it shuts down; a request written into one at that moment was never read,
 * and one the owner did apply before dying has the same effect when repeated.
 */
function repeatable(raw: IncomingMessage, reused: boolean, code: string | undefined): boolean {
  if (!reused || (code !== "ECONNRESET" && code !== "EPIPE")) return false;
  if (!idempotentMethods.has(raw.method ?? "")) return false;
  return conditionalHeaders.every((name) => raw.headers[name] === undefined);
}

/** Free keep-alive sockets to peers are closed after this long, before the peer's keep-alive timeout (72 s) closes them. */
const IDLE_SOCKET_MS = 30_000;
/** A peer that does not accept a connection within this long counts as unreachable. */
const CONNECT_TIMEOUT_MS = 2_000;
/** A forwarded body is kept up to this size, so a request that a shutting-down owner refused can be sent again. */
const REPLAY_LIMIT_BYTES = 1024 * 1024;

/** What a forwarded request's body was so far, for sending it again. */
interface BodyCopy {
  chunks: Buffer[];
  bytes: number;
  /** Longer than {@link REPLAY_LIMIT_BYTES}: it cannot be sent again. */
  overflow: boolean;
  /** Resolves once the client sent the whole body (or went away). */
  readonly complete: Promise<void>;
}

/**
 * Streams a request to the node that owns its tenant and the answer back: method, path,
 * headers (minus hop-by-hop ones and client-sent forwarding headers) and body as they come,
 * plus the identity this node authenticated and the hop count, signed with the cluster's secret. SSE
 * answers stream through as they are written; WebSocket upgrades are spliced byte for byte.
 * Connections to peers are kept alive and reused.
 */
export class RequestForwarder {
  readonly #secret: string;
  readonly #now: () => number;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: IDLE_SOCKET_MS });
  readonly #bodies = new WeakMap<IncomingMessage, BodyCopy>();

  readonly #answerTimeoutMs: number;

  /**
   * `answerTimeoutMs`: how long a sent request waits for the owner's answer to begin (a paused
   * or partitioned owner) before the client gets 502 and may try again, by when the owner's
   * lease has expired and another node takes the tenant over.
   */
  constructor(options: { secret: string; now: () => number; answerTimeoutMs: number }) {
    this.#secret = options.secret;
    this.#now = options.now;
    this.#answerTimeoutMs = options.answerTimeoutMs;
  }

  /**
   * Proxies `raw` to `address` and pipes the answer into `res`; `hijack` is called once, just
   * before the first byte of the answer is written. Resolves `unreachable` when nothing
   * reached the owner, or when the owner is shutting down and refused the request unread (503
   * with {@link closingHeader}): the caller may serve the request itself or try again, with the
   * body as the client sent it (kept up to {@link REPLAY_LIMIT_BYTES}). A failure after the
   * request reached the owner answers 502 `BAD_GATEWAY` (the outcome is unknown) or cuts a
   * streaming answer; a PUT or DELETE without conditions cut on a reused connection before any
   * answer resolves `unreachable` too, so it is sent again.
   */
  proxy(
    raw: IncomingMessage,
    res: ServerResponse,
    address: string,
    identity: RequestIdentity | null,
    hops: number,
    hijack: () => void,
  ): Promise<ForwardOutcome> {
    return new Promise((resolve) => {
      const target = new URL(address);
      const upstream = request({
        agent: this.#agent,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: raw.method,
        path: raw.url,
        headers: this.#headers(raw, identity, hops, false),
        timeout: CONNECT_TIMEOUT_MS,
      });
      const earlier = this.#bodies.get(raw);
      let sending = false;
      let answered = false;
      let settled = false;
      const onClose = () => {
        if (!res.writableFinished) upstream.destroy();
      };
      const retry = () => {
        settled = true;
        res.off("close", onClose);
        raw.unpipe(upstream);
        // Once sent, the rest of the body flows into its copy (unpipe pauses the stream); before that it stays unread.
        if (this.#bodies.has(raw)) raw.resume();
        upstream.destroy();
        resolve("unreachable");
      };
      const send = () => {
        if (sending) return;
        sending = true;
        upstream.setTimeout(this.#answerTimeoutMs);
        if (earlier === undefined) {
          raw.pipe(upstream);
          this.#bodies.set(raw, copyBody(raw));
          return;
        }
        // Sent before to a node that was shutting down: the same body again, once the client sent all of it.
        void earlier.complete.then(() => {
          if (settled) return;
          if (earlier.overflow) {
            settled = true;
            upstream.destroy();
            answerError(
              res,
              hijack,
              503,
              "CLOSED",
              "the node serving this tenant is shutting down: send the request again",
            );
            resolve("forwarded");
            return;
          }
          upstream.end(Buffer.concat(earlier.chunks));
        });
      };
      upstream.on("socket", (socket: Socket) => {
        // Headers and body go out as separate small writes: Nagle would hold the second one back.
        socket.setNoDelay(true);
        if (socket.connecting) socket.once("connect", send);
        else send();
      });
      upstream.on("timeout", () =>
        upstream.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })),
      );
      upstream.on("response", (answer) => {
        if (settled) return;
        if (answer.statusCode === 503 && answer.headers[closingHeader] !== undefined) {
          // Refused unread by an owner that is shutting down: sent again once its lease is released.
          if (this.#bodies.get(raw)?.overflow !== true) {
            answer.resume();
            retry();
            return;
          }
        }
        answered = true;
        settled = true;
        upstream.setTimeout(0);
        hijack();
        res.writeHead(answer.statusCode ?? 502, answerHeaders(answer.headers));
        // An event stream's client waits for the headers before the first event; other answers go out with their body.
        if (String(answer.headers["content-type"]).startsWith("text/event-stream")) res.flushHeaders();
        answer.pipe(res);
        answer.on("aborted", () => res.destroy());
        answer.on("error", () => res.destroy());
        resolve("forwarded");
      });
      upstream.on("error", (err: NodeJS.ErrnoException) => {
        if (answered) {
          res.destroy();
          return;
        }
        if (settled) return;
        // Nothing reached the owner, or a request without effects may simply be sent again.
        if (
          !sending ||
          (safeMethods.has(raw.method ?? "") && resendable.has(err.code ?? "")) ||
          repeatable(raw, upstream.reusedSocket, err.code)
        ) {
          retry();
          return;
        }
        settled = true;
        raw.unpipe(upstream);
        raw.resume();
        answerError(res, hijack, 502, "BAD_GATEWAY", "the node serving this tenant failed before answering");
        resolve("forwarded");
      });
      res.on("close", onClose);
    });
  }

  /**
   * Proxies a WebSocket upgrade: the owner's `101` (or refusal) is relayed to the client and
   * the two sockets are spliced. Resolves `unreachable` when the owner could not be reached
   * (the client socket is untouched).
   */
  proxyUpgrade(
    raw: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    address: string,
    identity: RequestIdentity | null,
    hops: number,
  ): Promise<ForwardOutcome> {
    return new Promise((resolve) => {
      const target = new URL(address);
      const upstream = request({
        agent: false,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: "GET",
        path: raw.url,
        headers: this.#headers(raw, identity, hops, true),
        timeout: CONNECT_TIMEOUT_MS,
      });
      let connected = false;
      upstream.on("socket", (s: Socket) => {
        s.once("connect", () => {
          connected = true;
          upstream.setTimeout(0);
        });
      });
      upstream.on("timeout", () =>
        upstream.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })),
      );
      upstream.on("upgrade", (answer, peer, peerHead) => {
        socket.write(statusLine(answer) + headerLines(answer.rawHeaders));
        if (peerHead.length > 0) socket.write(peerHead);
        if (head.length > 0) peer.write(head);
        peer.pipe(socket);
        socket.pipe(peer);
        const end = () => {
          peer.destroy();
          socket.destroy();
        };
        peer.on("error", end);
        peer.on("close", end);
        socket.on("error", end);
        socket.on("close", end);
        resolve("forwarded");
      });
      upstream.on("response", (answer) => {
        if (answer.statusCode === 503 && answer.headers[closingHeader] !== undefined) {
          // The owner is shutting down: the client is spliced to the next one instead.
          answer.resume();
          resolve("unreachable");
          return;
        }
        socket.write(statusLine(answer) + headerLines(answer.rawHeaders));
        answer.pipe(socket);
        resolve("forwarded");
      });
      upstream.on("error", () => {
        if (!connected) {
          resolve("unreachable");
          return;
        }
        socket.destroy();
        resolve("forwarded");
      });
      upstream.end();
    });
  }

  /**
   * The body of `raw` as a forwarding attempt sent it, once the client sent all of it, for a
   * request that is now served here after all: `undefined` when no attempt read the body (it is
   * still in `raw`), `null` when it was too large to keep.
   */
  async sentBody(raw: IncomingMessage): Promise<Buffer | null | undefined> {
    const copy = this.#bodies.get(raw);
    if (copy === undefined) return undefined;
    await copy.complete;
    return copy.overflow ? null : Buffer.concat(copy.chunks);
  }

  /** Closes the idle connections to peers. */
  close(): void {
    this.#agent.destroy();
  }

  #headers(
    raw: IncomingMessage,
    identity: RequestIdentity | null,
    hops: number,
    upgrade: boolean,
  ): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(raw.headers)) {
      if (value === undefined || forwardingHeaders.includes(name)) continue;
      if (hopByHop.has(name) && !(upgrade && (name === "connection" || name === "upgrade"))) continue;
      out[name] = value;
    }
    const peer = raw.socket.remoteAddress;
    if (peer !== undefined) {
      const before = raw.headers["x-forwarded-for"];
      out["x-forwarded-for"] = typeof before === "string" ? `${before}, ${peer}` : peer;
    }
    return { ...out, ...signForwarding(this.#secret, identity, hops + 1, this.#now()) };
  }
}

/** Keeps what the client sends as the body of `raw`, up to {@link REPLAY_LIMIT_BYTES}. */
function copyBody(raw: IncomingMessage): BodyCopy {
  let done: () => void = () => undefined;
  const copy: BodyCopy = { chunks: [], bytes: 0, overflow: false, complete: new Promise((r) => (done = r)) };
  raw.on("data", (chunk: Buffer) => {
    copy.bytes += chunk.length;
    if (copy.bytes > REPLAY_LIMIT_BYTES) {
      copy.overflow = true;
      copy.chunks = [];
    } else if (!copy.overflow) copy.chunks.push(chunk);
  });
  raw.once("end", () => done());
  raw.once("close", () => done());
  if (raw.readableEnded) done();
  return copy;
}

function answerError(res: ServerResponse, hijack: () => void, status: number, code: string, message: string): void {
  hijack();
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function answerHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
}

function statusLine(answer: IncomingMessage): string {
  return `HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}\r\n`;
}

function headerLines(rawHeaders: string[]): string {
  let text = "";
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${text}\r\n`;
}
