import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * Lets a closing HTTP server answer requests that arrive on existing keep-alive sockets instead
 * of resetting them. While draining, every response carries `Connection: close` (so clients
 * stop reusing sockets) and new requests get 503; {@link waitForSockets} then waits, up to a
 * grace period, for the clients to close their sockets before the server closes what is left.
 * Upgraded sockets (bus peers) are not counted: the brokers close them.
 */
export class ConnectionDrain {
  readonly #sockets = new Set<Socket>();
  /** Sockets with a request in progress (received, its response not finished). */
  readonly #busy = new Set<Socket>();
  readonly #onEmpty = new Set<() => void>();
  #draining = false;

  constructor(server: Server) {
    server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#forget(socket));
    });
    server.on("upgrade", (_req, socket: Socket) => this.#forget(socket));
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.#busy.add(socket);
      res.once("close", () => this.#busy.delete(socket));
    });
  }

  /** True once {@link begin} was called. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Starts draining: from now on responses close their sockets and new requests get 503. */
  begin(): void {
    this.#draining = true;
  }

  /** Resolves when no HTTP socket is open any more, or after `graceMs`, whichever comes first. */
  async waitForSockets(graceMs: number): Promise<void> {
    if (this.#sockets.size === 0 || graceMs <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#onEmpty.delete(done);
        resolve();
      };
      const timer = setTimeout(done, graceMs);
      timer.unref();
      this.#onEmpty.add(done);
    });
  }

  /**
   * Closes every socket without a request in progress: keep-alive sockets between requests and
   * connections that never sent one (which the HTTP server's own idle closing leaves open, so one
   * such client would hold the shutdown until it gave up).
   */
  closeIdle(): void {
    for (const socket of this.#sockets) if (!this.#busy.has(socket)) socket.destroy();
  }

  #forget(socket: Socket): void {
    this.#busy.delete(socket);
    this.#sockets.delete(socket);
    if (this.#sockets.size === 0) for (const done of [...this.#onEmpty]) done();
  }
}
