import { join } from "node:path";
import WebSocket from "ws";
import { AuditLog } from "../../src/bus/audit-log.js";
import { Broker } from "../../src/bus/broker.js";
import type { BrokerOptions } from "../../src/bus/broker-options.js";
import { busMigrations } from "../../src/bus/bus-migrations.js";
import { MessageStore } from "../../src/bus/message-store.js";
import { PROTOCOL_VERSION } from "../../src/bus/wire/envelope.js";
import { signEnvelope } from "../../src/bus/wire/envelope-hmac.js";
import { encodeFrame, type Frame, parseFrame } from "../../src/bus/wire/frames.js";
import { decodeWireText } from "../../src/bus/wire/wire-text.js";
import type { Clock } from "../../src/clock.js";
import {
  type Database,
  type Executor,
  MigrationSet,
  openSqlite,
  type TransactionOptions,
} from "../../src/sql/index.js";

export const SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret!";
export const TOKEN = "token-one";

export interface RunningBroker {
  broker: Broker;
  url: string;
  db: Database;
  store: MessageStore;
  audit: AuditLog;
  stop(): Promise<void>;
}

/** A broker on a SQLite file (reused when `path` exists) on a free loopback port; `clock` times the store. */
export async function startBroker(
  path: string,
  options: Partial<BrokerOptions> = {},
  clock?: Clock,
): Promise<RunningBroker> {
  return startBrokerOn(await openSqlite(path), options, clock);
}

/** A broker over any open database (closed by `stop`). */
export async function startBrokerOn(
  db: Database,
  options: Partial<BrokerOptions> = {},
  clock?: Clock,
): Promise<RunningBroker> {
  const store = await MessageStore.open({ database: db, ...(clock === undefined ? {} : { clock }) });
  const audit = await AuditLog.open({ database: db });
  const broker = new Broker({ store, audit, tokens: [TOKEN, "token-two"], hmacSecret: SECRET, ...options });
  const { port } = await broker.listen({ port: 0 });
  return {
    broker,
    url: `ws://127.0.0.1:${port}`,
    db,
    store,
    audit,
    async stop() {
      await broker.close();
      await db.close();
    },
  };
}

export function dbPath(dir: string, name: string): string {
  return join(dir, `${name}-${Math.random().toString(36).slice(2)}.db`);
}

/**
 * Registers "carol" (then disconnects her, so messages to her queue), "bob" and "alice" on the
 * broker at `url`; `cleanup` gets the two open peers' closes.
 */
export async function carolAwayBobAndAlice(
  url: string,
  cleanup: (() => Promise<void>)[],
): Promise<{ bob: RawPeer; alice: RawPeer }> {
  const carol = await RawPeer.register(url, "carol");
  await carol.close();
  const bob = await RawPeer.register(url, "bob");
  const alice = await RawPeer.register(url, "alice");
  cleanup.push(
    () => bob.close(),
    () => alice.close(),
  );
  return { bob, alice };
}

/** A hand-driven WebSocket peer that records every frame and the close code. */
export class RawPeer {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  /** The raw bytes of every frame received, in order. */
  readonly raw: Buffer[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  #waiters: (() => void)[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url, { skipUTF8Validation: true, maxPayload: 4 << 20 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
    this.closed = new Promise((resolve) =>
      this.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    this.ws.on("message", (data) => {
      this.raw.push(data as Buffer);
      this.frames.push(parseFrame(decodeWireText(data as Buffer).text));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async register(url: string, name: string, token = TOKEN): Promise<RawPeer> {
    const peer = new RawPeer(url);
    await peer.opened;
    peer.send(encodeFrame({ type: "register", token, name }));
    await peer.waitFor((f) => f.type === "peers");
    return peer;
  }

  /** Sends a text frame; a Buffer goes out as the frame's exact bytes (UTF-8 or not). */
  send(text: string | Buffer): void {
    this.ws.send(text, { binary: false });
  }

  /** Signs and sends an envelope. */
  sendMessage(from: string, to: string, id: string, body: unknown = { n: id }, secret = SECRET): void {
    const env = signEnvelope(
      {
        protocol_version: PROTOCOL_VERSION,
        id,
        from,
        to,
        ts: "2026-01-01T00:00:00Z",
        source: "test",
        kind: to === "*" ? "broadcast" : "msg",
        body: JSON.stringify(body),
      },
      secret,
    );
    this.send(encodeFrame({ type: "envelope", envelope: env }));
  }

  /** Resolves with the first recorded frame (from the start) that matches, waiting if needed. */
  async waitFor(match: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out; frames: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  delivered(): string[] {
    return this.frames.flatMap((f) => (f.type === "deliver" ? [f.deliveryKey] : []));
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** Polls `check` until it returns true (real time; for cross-connection effects). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The real database seen through a counter of committed top-level transactions, with fault
 * injection: `failCommits(n)` makes the next `n` transactions run their statements and then
 * roll back with an error instead of committing.
 */
export function instrumented(db: Database): { db: Database; commits: () => number; failCommits: (n: number) => void } {
  let commits = 0;
  let failing = 0;
  const wrapped = new Proxy(db, {
    get(target, key) {
      if (key === "transaction") {
        return <T>(fn: (tx: Executor) => Promise<T>, options?: TransactionOptions) =>
          target
            .transaction(async (tx) => {
              const result = await fn(tx);
              if (failing > 0) {
                failing--;
                throw new Error("injected commit failure");
              }
              return result;
            }, options)
            .then((result) => {
              commits++;
              return result;
            });
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    db: wrapped,
    commits: () => commits,
    failCommits: (n) => {
      failing = n;
    },
  };
}

/** Applies the `bus` migrations whose id sorts before `before` (e.g. `"bus/006"`): a database written by an older release. */
export async function migrateBusBefore(db: Database, before: string): Promise<void> {
  const set = new MigrationSet<Executor>("bus");
  for (const m of busMigrations.list().filter((m) => m.id < before)) set.add(m);
  await db.migrate(set);
}
