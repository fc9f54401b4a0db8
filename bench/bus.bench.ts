import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import BetterSqlite3 from "better-sqlite3";
import { better, defineQueue } from "plainjob";
import WebSocket, { WebSocketServer } from "ws";
import { AuditLog } from "../src/bus/audit-log.js";
import { blake3Hex } from "../src/bus/blake3-hex.js";
import { Broker } from "../src/bus/broker.js";
import { BusClient } from "../src/bus/bus-client.js";
import { MessageStore } from "../src/bus/message-store.js";
import { openSqlite } from "../src/sql/index.js";
import { type BenchCase, runSuite } from "./harness.js";

const BATCH = 100;
const ENVELOPE = Buffer.alloc(200, 120);
const SECRET = "bench-secret-bench-secret-bench-secret";
const blake3Wasm = createRequire(import.meta.url)("blake3-wasm") as { hash(data: Uint8Array): Buffer };

let counter = 0;
const nextId = () => `m${counter++}`;

async function storeCases(dir: string): Promise<BenchCase[]> {
  const db = await openSqlite(join(dir, "store.db"));
  const store = await MessageStore.open({ database: db });
  await store.register({ name: "bob" });

  const raw = new BetterSqlite3(join(dir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec(`CREATE TABLE peers (name TEXT PRIMARY KEY);
    CREATE TABLE messages (id TEXT PRIMARY KEY, sender TEXT, recipient TEXT, envelope BLOB, delivered INTEGER DEFAULT 0,
      acked INTEGER DEFAULT 0, attempts INTEGER DEFAULT 0, seq INTEGER, ts INTEGER);
    CREATE INDEX messages_pending ON messages (recipient, delivered, sender, seq);
    CREATE TABLE sender_seq (sender TEXT PRIMARY KEY, next INTEGER);
    INSERT INTO peers VALUES ('bob');`);
  const peer = raw.prepare("SELECT 1 FROM peers WHERE name = ?");
  const dup = raw.prepare("SELECT 1 FROM messages WHERE id = ?");
  const seq = raw.prepare(
    "INSERT INTO sender_seq (sender, next) VALUES (?, 1) ON CONFLICT (sender) DO UPDATE SET next = next + 1 RETURNING next - 1 AS seq",
  );
  const insert = raw.prepare(
    "INSERT INTO messages (id, sender, recipient, envelope, seq, ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
  );
  const pending = raw.prepare(
    "SELECT id, sender, recipient, envelope, delivered, acked, attempts, seq, ts FROM messages WHERE recipient = ? AND delivered = 0 AND acked = 0 ORDER BY sender, seq, ts",
  );
  const enqueueRaw = raw.transaction((id: string) => {
    peer.get("bob");
    dup.get(id);
    const { seq: s } = seq.get("alice") as { seq: number };
    insert.run(id, "alice", "bob", ENVELOPE, s, Date.now());
  });
  const mark = (set: string, n: number) =>
    raw.prepare(`UPDATE messages SET ${set} WHERE id IN (${Array.from({ length: n }, () => "?").join(",")})`);
  const delivered1 = mark("delivered = 1, attempts = attempts + 1", 1);
  const acked1 = mark("acked = 1, delivered = 1", 1);
  const deliveredN = mark("delivered = 1, attempts = attempts + 1", BATCH);
  const ackedN = mark("acked = 1, delivered = 1", BATCH);

  const queue = defineQueue({
    connection: better(new BetterSqlite3(join(dir, "plainjob.db"))),
    logger: { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} },
  });
  const processOne = () => {
    const job = queue.getAndMarkJobAsProcessing("msg");
    if (job !== undefined) queue.markJobAsDone(job.id);
  };

  return [
    {
      group: "store cycle, 1 message",
      name: "storeroom MessageStore",
      role: "ours",
      fn: async () => {
        const id = nextId();
        await store.enqueue({ id, from: "alice", to: "bob", envelope: ENVELOPE });
        await store.pendingFor("bob");
        await store.markDelivered(id);
        await store.markAcked(id);
      },
    },
    {
      group: "store cycle, 1 message",
      name: "raw better-sqlite3",
      role: "raw",
      fn: () => {
        const id = nextId();
        enqueueRaw(id);
        pending.all("bob");
        delivered1.run(id);
        acked1.run(id);
      },
    },
    {
      group: "store cycle, 1 message",
      name: "plainjob add + process",
      role: "peer",
      fn: () => {
        queue.add("msg", "x".repeat(200));
        processOne();
      },
    },
    {
      group: `store cycle, batches of ${BATCH}`,
      name: "storeroom MessageStore (enqueue each, batch marks)",
      role: "ours",
      batch: BATCH,
      fn: async () => {
        for (let i = 0; i < BATCH; i++)
          await store.enqueue({ id: nextId(), from: "alice", to: "bob", envelope: ENVELOPE });
        const ids = (await store.pendingFor("bob")).map((m) => m.id);
        await store.markDelivered(ids);
        await store.markAcked(ids);
      },
    },
    {
      group: `store cycle, batches of ${BATCH}`,
      name: "storeroom MessageStore (enqueue in one tx)",
      role: "ours",
      batch: BATCH,
      fn: async () => {
        await db.transaction(async (tx) => {
          for (let i = 0; i < BATCH; i++) {
            await store.enqueue({ id: nextId(), from: "alice", to: "bob", envelope: ENVELOPE }, tx);
          }
        });
        const ids = (await store.pendingFor("bob")).map((m) => m.id);
        await store.markDelivered(ids);
        await store.markAcked(ids);
      },
    },
    {
      group: `store cycle, batches of ${BATCH}`,
      name: "raw better-sqlite3 (enqueue each, batch marks)",
      role: "raw",
      batch: BATCH,
      fn: () => {
        for (let i = 0; i < BATCH; i++) enqueueRaw(nextId());
        const ids = (pending.all("bob") as { id: string }[]).map((m) => m.id);
        deliveredN.run(...ids);
        ackedN.run(...ids);
      },
    },
    {
      group: `store cycle, batches of ${BATCH}`,
      name: "plainjob addMany + process",
      role: "peer",
      batch: BATCH,
      fn: () => {
        queue.addMany(
          "msg",
          Array.from({ length: BATCH }, () => "x".repeat(200)),
        );
        for (let i = 0; i < BATCH; i++) processOne();
      },
    },
  ];
}

async function auditCases(dir: string): Promise<BenchCase[]> {
  const db = await openSqlite(join(dir, "audit.db"));
  const audit = await AuditLog.open({ database: db });
  const event = new Uint8Array(200).fill(101);
  const verifyDb = await openSqlite(join(dir, "audit-verify.db"));
  const verifyLog = await AuditLog.open({ database: verifyDb });
  const ROWS = 20_000;
  for (let i = 0; i < ROWS; i += 1000) await verifyLog.appendMany(Array.from({ length: 1000 }, () => event));
  return [
    {
      group: "audit append (200 B events)",
      name: "append, one per call",
      role: "ours",
      fn: async () => {
        await audit.append(event);
      },
    },
    {
      group: "audit append (200 B events)",
      name: `appendMany, ${BATCH} per call`,
      role: "ours",
      batch: BATCH,
      fn: async () => {
        await audit.appendMany(Array.from({ length: BATCH }, () => event));
      },
    },
    {
      group: "audit verify (200 B events)",
      name: `verify ${ROWS} rows`,
      role: "ours",
      batch: ROWS,
      fn: async () => {
        if ((await verifyLog.verify()) !== null) throw new Error("chain broken");
      },
    },
  ];
}

function blake3Cases(): BenchCase[] {
  const small = new Uint8Array(200).fill(7);
  const big = new Uint8Array(1 << 20).fill(7);
  const cases: BenchCase[] = [];
  for (const [label, data, batch] of [
    ["200 B", small, 1000],
    ["1 MiB", big, 1],
  ] as const) {
    const group = `BLAKE3 ${label}`;
    const loop = (f: () => unknown) => () => {
      for (let i = 0; i < batch; i++) f();
    };
    cases.push(
      { group, name: "hash-wasm (blake3Hex, chosen)", role: "ours", batch, fn: loop(() => blake3Hex(data)) },
      {
        group,
        name: "blake3-wasm 2.1.5",
        role: "peer",
        batch,
        fn: loop(() => blake3Wasm.hash(data).toString("hex")),
      },
      {
        group,
        name: "@noble/hashes",
        role: "peer",
        batch,
        fn: loop(() => Buffer.from(nobleBlake3(data)).toString("hex")),
      },
    );
  }
  return cases;
}

/** Two peers over loopback: alice sends `n` messages, bob handles and acks them. */
async function brokerCases(dir: string): Promise<{ cases: BenchCase[]; close: () => Promise<void> }> {
  const N = 1000;
  const db = await openSqlite(join(dir, "broker.db"));
  const store = await MessageStore.open({ database: db });
  const audit = await AuditLog.open({ database: db });
  const broker = new Broker({ store, audit, tokens: ["t"], hmacSecret: SECRET });
  const { port } = await broker.listen({ port: 0 });
  const url = `ws://127.0.0.1:${port}`;
  let received = 0;
  let wake: () => void = () => {};
  const bob = new BusClient({
    url,
    name: "bob",
    token: "t",
    hmacSecret: SECRET,
    dedupeSize: 4096,
    onMessage: () => {
      received++;
      wake();
    },
  });
  const alice = new BusClient({ url, name: "alice", token: "t", hmacSecret: SECRET, onMessage: () => {} });
  await bob.connect();
  await alice.connect();
  const waitFor = (target: number) =>
    new Promise<void>((resolve) => {
      wake = () => {
        if (received >= target) resolve();
      };
      wake();
    });

  // The same traffic through a bare ws relay: no storage, no HMAC, no audit.
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const sockets = new Map<string, WebSocket>();
  wss.on("connection", (ws, req) => {
    const name = req.url?.slice(1) ?? "";
    sockets.set(name, ws);
    ws.on("message", (data) => {
      const to = name === "alice" ? "bob" : "alice";
      sockets.get(to)?.send(data);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const relayPort = (server.address() as AddressInfo).port;
  const open = (name: string) =>
    new Promise<WebSocket>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/${name}`);
      ws.once("open", () => resolve(ws));
    });
  const rawAlice = await open("alice");
  const rawBob = await open("bob");
  let rawReceived = 0;
  let rawWake: () => void = () => {};
  rawBob.on("message", (data) => {
    rawReceived++;
    rawBob.send(`ack:${data.toString().slice(0, 20)}`);
    rawWake();
  });
  const payload = JSON.stringify({ text: "x".repeat(150) });

  const cases: BenchCase[] = [
    {
      group: "broker end to end (2 peers, acks)",
      name: "storeroom Broker + BusClient",
      role: "ours",
      batch: N,
      fn: async () => {
        const target = received + N;
        for (let i = 0; i < N; i++) void alice.send("bob", { text: "x".repeat(150) });
        await waitFor(target);
      },
    },
    {
      group: "broker end to end (2 peers, acks)",
      name: "bare ws relay (no storage)",
      role: "raw",
      batch: N,
      fn: async () => {
        const target = rawReceived + N;
        for (let i = 0; i < N; i++) rawAlice.send(payload);
        await new Promise<void>((resolve) => {
          rawWake = () => {
            if (rawReceived >= target) resolve();
          };
          rawWake();
        });
      },
    },
  ];
  return {
    cases,
    async close() {
      await alice.close();
      await bob.close();
      await broker.close();
      await db.close();
      rawAlice.close();
      rawBob.close();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export default async function busBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bus-bench-"));
  try {
    const broker = await brokerCases(dir);
    const cases = [...(await storeCases(dir)), ...(await auditCases(dir)), ...blake3Cases(), ...broker.cases];
    await runSuite("bus", cases);
    await broker.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
