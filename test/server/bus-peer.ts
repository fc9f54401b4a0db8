import WebSocket from "ws";
import { type Envelope, encodeEnvelope, encodeFrame, parseFrame, signEnvelope } from "../../src/bus/index.js";

/** A minimal peerbus v1 peer over a raw WebSocket, with the HTTP headers the server needs. */
export class TestPeer {
  readonly deliveries: Envelope[] = [];
  readonly #ws: WebSocket;
  readonly #secret: string;
  readonly name: string;
  #waiters: (() => void)[] = [];

  private constructor(ws: WebSocket, name: string, secret: string) {
    this.#ws = ws;
    this.name = name;
    this.#secret = secret;
    ws.on("message", (data) => {
      const frame = parseFrame(data.toString());
      if (frame.type === "deliver") {
        this.deliveries.push(frame.envelope);
        ws.send(encodeFrame({ type: "ack", id: frame.deliveryKey }));
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Connects to `url` with `headers`, registers `name` and waits for the peers ack. */
  static async connect(url: string, headers: Record<string, string>, name: string, secret: string): Promise<TestPeer> {
    const ws = new WebSocket(url, { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const peer = new TestPeer(ws, name, secret);
    const acked = new Promise<void>((resolve) => ws.once("message", () => resolve()));
    ws.send(encodeFrame({ type: "register", token: `${name}-peer-token`, name }));
    await acked;
    return peer;
  }

  /**
   * Tries to register `name` and resolves with the close code the server answered with; fails
   * when the registration was accepted instead.
   */
  static async refusedCode(url: string, headers: Record<string, string>, name: string): Promise<number> {
    const ws = new WebSocket(url, { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const outcome = new Promise<number>((resolve, reject) => {
      ws.once("message", () => {
        ws.close();
        reject(new Error(`${name}: registration was accepted`));
      });
      ws.once("close", (code) => resolve(code));
    });
    ws.send(encodeFrame({ type: "register", token: `${name}-peer-token`, name }));
    return outcome;
  }

  send(to: string, body: unknown, id: string): void {
    const env = signEnvelope(
      {
        protocol_version: "v1",
        id,
        from: this.name,
        to,
        ts: new Date().toISOString(),
        source: "test",
        kind: to === "*" ? "broadcast" : "msg",
        body: JSON.stringify(body),
      },
      this.#secret,
    );
    this.#ws.send(encodeEnvelope(env));
  }

  /** Resolves once `count` deliveries arrived (or rejects after `ms`). */
  async waitFor(count: number, ms = 5000): Promise<Envelope[]> {
    const deadline = Date.now() + ms;
    while (this.deliveries.length < count) {
      if (Date.now() > deadline) throw new Error(`${this.name}: ${this.deliveries.length}/${count} deliveries`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.deliveries;
  }

  /** Resolves with the close code once the server closes the socket. */
  closed(): Promise<number> {
    return new Promise((resolve) => this.#ws.once("close", (code) => resolve(code)));
  }

  close(): void {
    this.#ws.close();
  }
}
