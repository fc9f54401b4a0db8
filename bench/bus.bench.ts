import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import BetterSqlite3 from "better-sqlite3";
import { createBLAKE3 } from "hash-wasm";
import { better, defineQueue } from "plainjob";
import type WebSocket from "ws";
import { WebSocketServer } from "ws";
import { AuditLog } from "../src/bus/audit-log.js";
import { blake3Hex } from "../src/bus/blake3-hex.js";
import { Broker } from "../src/bus/broker.js";
import { MessageStore } from "../src/bus/message-store.js";
import { ManualClock } from "../src/clock.js";
import { type Database, openSqlite, type SqlParams } from "../src/sql/index.js";
import { buildBaseline } from "./baseline-build.js";
import { type BenchCase, runSuite } from "./harness.js";

const BATCH = 100;
const ENVELOPE = Buffer.alloc(200, 120);
const SECRET = "bench-secret-bench-secret-bench-secret";
const blake3Wasm = createRequire(import.meta.url)("blake3-wasm") as { hash(data: Uint8Array): Buffer };
const hashWasm = await createBLAKE3();

let counter = 0;
const nextId = () => `m${counter++}`;

/** Cases and what closes the handles they hold (plainjob's maintenance interval would keep the process alive). */
interface CaseSet {
  cases: BenchCase[];
  close: () => Promise<void>;
}

async function storeCases(dir: string): Promise<CaseSet> {
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

  const cases: BenchCase[] = [
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
  const close = async () => {
    queue.close();
    raw.close();
    await db.close();
  };
  return { cases, close };
}

/** Acked rows in each table before the retention cases start: a broker that never pruned. */
const PREFILLED = 50_000;

/** A store over a file holding {@link PREFILLED} acked messages with random ids (as peers send them). */
async function prefilledStore(path: string, clock: ManualClock): Promise<{ db: Database; store: MessageStore }> {
  const db = await openSqlite(path);
  const store = await MessageStore.open({ database: db, clock });
  await store.register({ name: "bob" });
  for (let done = 0; done < PREFILLED; done += 1000) {
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    await store.enqueueMany(ids.map((id) => ({ id, from: "alice", to: "bob", envelope: ENVELOPE, delivered: true })));
    await store.ackFor("bob", ids);
  }
  return { db, store };
}

/**
 * The batched store cycle over a table that already holds 50,000 acked rows: without pruning
 * (the table keeps growing) and with the prune deleting each batch once it is acked (the
 * retention window passed; the delete is part of the measured cycle).
 */
async function retentionCases(dir: string): Promise<CaseSet> {
  const clock = new ManualClock(Date.now());
  const grown = await prefilledStore(join(dir, "grown.db"), clock);
  const pruned = await prefilledStore(join(dir, "pruned.db"), clock);
  const rawPath = join(dir, "raw-pruned.db");
  await (await prefilledStore(rawPath, clock)).db.close();
  clock.advance(1);
  while ((await pruned.store.pruneAcked(0)) > 0);
  const raw = new BetterSqlite3(rawPath);
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("DELETE FROM bus_messages");
  const marks = placeholders(BATCH);
  const peer = raw.prepare("SELECT name FROM bus_peers WHERE name IN (?)");
  const dup = raw.prepare(`SELECT id FROM bus_messages WHERE id IN (${marks})`);
  const seq = raw.prepare(
    "INSERT INTO bus_sender_seq (sender, next) VALUES (@s, @n) ON CONFLICT (sender) DO UPDATE SET next = next + @n RETURNING next - @n AS first",
  );
  const insert = raw.prepare(
    `INSERT INTO bus_messages (id, sender, recipient, envelope, seq, ts, delivered, attempts) VALUES ${Array.from({ length: BATCH }, () => "(?, ?, ?, ?, ?, ?, 1, 1)").join(", ")} ON CONFLICT (id) DO NOTHING`,
  );
  const ack = raw.prepare(
    `UPDATE bus_messages SET acked = 1, delivered = 1, acked_at = ? WHERE id IN (${marks}) AND recipient = ? AND acked <> 1`,
  );
  const prune = raw.prepare(
    "DELETE FROM bus_messages WHERE id IN (SELECT id FROM bus_messages WHERE acked_at < ? ORDER BY acked_at LIMIT 1000)",
  );
  const rawCycle = raw.transaction((ids: string[]) => {
    peer.all("bob");
    dup.all(...ids);
    const { first } = seq.get({ s: "alice", n: BATCH }) as { first: number };
    insert.run(...ids.flatMap((id, k) => [id, "alice", "bob", ENVELOPE, first + k, clock.now()]));
  });
  // The broker's shape: delivered on store (a live recipient), then one ack per batch.
  const cycle = async (store: MessageStore, prune: boolean) => {
    const ids = Array.from({ length: BATCH }, () => randomUUID());
    await store.enqueueMany(ids.map((id) => ({ id, from: "alice", to: "bob", envelope: ENVELOPE, delivered: true })));
    await store.ackFor("bob", ids);
    clock.advance(1);
    if (prune) await store.pruneAcked(0);
  };
  const group = `store cycle over ${PREFILLED.toLocaleString("en")} acked rows, batches of ${BATCH}`;
  const cases: BenchCase[] = [
    { group, name: "MessageStore, no pruning", role: "ours", batch: BATCH, fn: () => cycle(grown.store, false) },
    {
      group,
      name: "MessageStore, pruned (retention passed)",
      role: "ours",
      batch: BATCH,
      vs: "MessageStore, no pruning",
      fn: () => cycle(pruned.store, true),
    },
    {
      group,
      name: "raw better-sqlite3, same statements, pruned",
      role: "raw",
      batch: BATCH,
      fn: () => {
        const ids = Array.from({ length: BATCH }, () => randomUUID());
        rawCycle(ids);
        ack.run(clock.now(), ...ids, "bob");
        clock.advance(1);
        prune.run(clock.now());
      },
    },
  ];
  const close = async () => {
    raw.close();
    await grown.db.close();
    await pruned.db.close();
  };
  return { cases, close };
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}

async function auditCases(dir: string): Promise<CaseSet> {
  const db = await openSqlite(join(dir, "audit.db"));
  const audit = await AuditLog.open({ database: db });
  const event = new Uint8Array(200).fill(101);
  const verifyDb = await openSqlite(join(dir, "audit-verify.db"));
  const verifyLog = await AuditLog.open({ database: verifyDb });
  const ROWS = 20_000;
  for (let i = 0; i < ROWS; i += 1000) await verifyLog.appendMany(Array.from({ length: 1000 }, () => event));
  const cases: BenchCase[] = [
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
  const close = async () => {
    await db.close();
    await verifyDb.close();
  };
  return { cases, close };
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
      {
        group,
        name: "blake3Hex (hash-wasm, hex digest)",
        role: "ours",
        batch,
        fn: loop(() => blake3Hex(data)),
      },
      {
        group,
        name: "hash-wasm",
        role: "peer",
        batch,
        fn: loop(() => hashWasm.init().update(data).digest("hex")),
      },
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

const FLOOD = Number(process.env.BUS_FLOOD ?? 20_000);
const SERIAL = Number(process.env.BUS_SERIAL ?? 2_000);
const FAN_IN = 8;
/**
 * Untimed messages first, so the timed ones run on compiled code (one at a time: fewer, they are
 * slow; 300 left the broker's CPU per message a third above what it settles at).
 */
const WARMUP = Number(process.env.BUS_WARMUP ?? 2_000);
const SERIAL_WARMUP = Math.min(WARMUP, 1_000);

/**
 * A view of `db` that counts commits: top-level transactions plus writes outside one (each an
 * autocommit). Reads are not counted; everything else passes through.
 */
function countCommits(db: Database): { db: Database; commits: () => number } {
  let commits = 0;
  const isWrite = (sql: string) => !/^\s*(SELECT|WITH|PRAGMA)\b/i.test(sql);
  const wrapped = new Proxy(db, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key === "transaction") {
        return (...args: Parameters<Database["transaction"]>) => {
          commits++;
          return target.transaction(...args);
        };
      }
      if (key === "run" || key === "get" || key === "all") {
        return (sql: string, params?: SqlParams) => {
          if (isWrite(sql)) commits++;
          return (target[key] as (s: string, p?: SqlParams) => Promise<unknown>).call(target, sql, params);
        };
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: wrapped, commits: () => commits };
}

/** One timed run: messages per second, delivery latency percentiles, commits per message. */
interface Run {
  msgsPerSec: number;
  /** CPU time (user + system) of the broker's (or relay's) process per message: steadier than wall time on a busy machine. */
  cpuUsPerMsg: number;
  latencies: number[];
  commitsPerMsg?: number;
}

type Shape = "flood" | "serial" | "fan-in";

const peersScript = fileURLToPath(new URL("./bus-peers.mjs", import.meta.url));

/** A peers process (see bench/bus-peers.mjs) and the lines it printed. */
function peersProcess(config: Record<string, unknown>) {
  const child = spawn(process.execPath, [peersScript, JSON.stringify({ ...config, secret: SECRET })], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let out = "";
  const waiters: (() => void)[] = [];
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  /** Resolves with the rest of the first line starting with `word`. */
  const line = (word: string) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        // Only a whole line: a long one arrives in several chunks.
        const m = new RegExp(`^${word}(.*)\n`, "m").exec(out);
        if (m) resolve((m[1] as string).trim());
        else waiters.push(check);
      };
      check();
      void exited.then((code) => reject(new Error(`peers exited with ${code}`)));
    });
  return { line, write: (text: string) => child.stdin.write(text), end: () => child.stdin.end(), exited };
}

/**
 * Runs the peers in processes of their own against `url` (as real peers run: the broker's
 * process does only the broker's work): for a flood the receiver and the senders each in their
 * own, one at a time both in one. After the warm-up messages, timed in this process from the
 * first send until the receiver has every message and `settled` resolves; `onStart` runs at the
 * first timed send.
 */
async function drive(
  kind: "storeroom" | "relay",
  url: string,
  shape: Shape,
  settled: () => Promise<void>,
  onStart: () => void = () => {},
  clientModule?: string,
): Promise<Run & { total: number }> {
  const total = shape === "serial" ? SERIAL : FLOOD;
  const warmup = shape === "serial" ? SERIAL_WARMUP : WARMUP;
  const base = { kind, url, shape, total, warmup, senders: shape === "fan-in" ? FAN_IN : 1, client: clientModule };
  const procs =
    shape === "serial" ? [peersProcess({ ...base, role: "both" })] : [peersProcess({ ...base, role: "receiver" })];
  const first = procs[0] as ReturnType<typeof peersProcess>;
  await first.line("READY");
  if (shape !== "serial") procs.push(peersProcess({ ...base, role: "sender" }));
  const sender = procs[procs.length - 1] as ReturnType<typeof peersProcess>;
  if (shape !== "serial" && warmup > 0) {
    await first.line("WARM");
    sender.write("go\n");
  }
  await sender.line("START");
  const cpu = process.cpuUsage();
  const start = performance.now();
  onStart();
  const done = await Promise.all(procs.map((p) => p.line("DONE")));
  await settled();
  const elapsed = performance.now() - start;
  const cpuUsPerMsg = cpuPerMessage(cpu, total);
  for (const p of procs) p.end();
  await Promise.all(procs.map((p) => p.exited));
  const latencies = JSON.parse(done[0] as string) as number[];
  return { msgsPerSec: (total / elapsed) * 1000, cpuUsPerMsg, latencies, total };
}

/** What a broker run needs: this tree's modules, or those of another commit's build (see {@link baselineBroker}). */
interface BrokerModules {
  Broker: typeof Broker;
  MessageStore: typeof MessageStore;
  AuditLog: typeof AuditLog;
  openSqlite: typeof openSqlite;
  /** Options the broker's database is opened with. */
  sqliteOptions: Parameters<typeof openSqlite>[1];
  /** The URL of the `bus/index.js` whose BusClient the peers use; this tree's when absent. */
  clientModule?: string;
}

// As `storeroom bus serve` opens it: checkpoints on a worker thread.
const CURRENT: BrokerModules = {
  Broker,
  MessageStore,
  AuditLog,
  openSqlite,
  sqliteOptions: { backgroundCheckpoint: {} },
};

/**
 * The broker of another commit (BUS_BASELINE, e.g. `caafbbb^`, the broker before the commit-path
 * rework), built once by {@link buildBaseline}. Its database opens with that commit's defaults.
 * With BUS_BASELINE_CLIENT=1 its peers use that commit's BusClient too: the whole bus as it was,
 * end to end, instead of the old broker behind today's client.
 */
async function baselineBroker(rev: string): Promise<BrokerModules & { sha: string }> {
  const { sha, dist } = buildBaseline(rev, "bus/index.js");
  const busModule = pathToFileURL(join(dist, "bus", "index.js")).href;
  const bus = (await import(busModule)) as Pick<BrokerModules, "Broker" | "MessageStore" | "AuditLog">;
  const sql = (await import(pathToFileURL(join(dist, "sql", "index.js")).href)) as Pick<BrokerModules, "openSqlite">;
  return {
    sha,
    Broker: bus.Broker,
    MessageStore: bus.MessageStore,
    AuditLog: bus.AuditLog,
    openSqlite: sql.openSqlite,
    sqliteOptions: {},
    ...(process.env.BUS_BASELINE_CLIENT === "1" ? { clientModule: busModule } : {}),
  };
}

async function ourRun(dir: string, shape: Shape, mods: BrokerModules = CURRENT): Promise<Run> {
  const path = join(dir, `broker-${shape}-${counter++}.db`);
  const counted = countCommits(await mods.openSqlite(path, mods.sqliteOptions));
  const store = await mods.MessageStore.open({ database: counted.db });
  const audit = await mods.AuditLog.open({ database: counted.db });
  const broker = new mods.Broker({ store, audit, tokens: ["t"], hmacSecret: SECRET });
  const { port } = await broker.listen({ port: 0 });
  let before = 0;
  const settled = async () => {
    // The run ends when every ack is committed too.
    for (;;) {
      const row = await counted.db.get<{ n: number }>("SELECT count(*) AS n FROM bus_messages WHERE acked = 0");
      if (row?.n === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const run = await drive(
    "storeroom",
    `ws://127.0.0.1:${port}`,
    shape,
    settled,
    () => {
      before = counted.commits();
    },
    mods.clientModule,
  );
  const commits = counted.commits() - before;
  await broker.close();
  await counted.db.close();
  return { ...run, commitsPerMsg: commits / run.total };
}

/** The same traffic through a bare ws relay: no storage, no HMAC, no audit; acks go back to the sender. */
async function relayRun(shape: Shape): Promise<Run> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const sockets = new Map<string, WebSocket>();
  wss.on("connection", (ws, req) => {
    const name = req.url?.slice(1) ?? "";
    sockets.set(name, ws);
    ws.on("message", (data) => {
      // Frames to bob are "<sender>\n<payload>"; acks from bob are "<sender>\n<ack>".
      const text = data.toString();
      const to = name === "bob" ? text.slice(0, text.indexOf("\n")) : "bob";
      sockets.get(to)?.send(name === "bob" ? text : `${name}\n${text}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  const run = await drive("relay", `ws://127.0.0.1:${port}`, shape, async () => {});
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await new Promise<void>((r) => server.close(() => r()));
  return run;
}

function cpuPerMessage(since: NodeJS.CpuUsage, messages: number): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / messages;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

/**
 * Broker end to end, paired with a bare ws relay in the same round (and, with BUS_BASELINE, with
 * the broker of that commit): each round runs every shape, each kind back to back (the order
 * rotating by round). Throughput is the median
 * over rounds, the ratio the median of per-round ratios, latency percentiles are over the
 * messages of all rounds.
 */
async function brokerSection(dir: string): Promise<void> {
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
  const shapes = (process.env.BUS_SHAPES?.split(",") ?? ["flood", "serial", "fan-in"]) as Shape[];
  const baselineRev = process.env.BUS_BASELINE;
  const baseline = baselineRev === undefined ? undefined : await baselineBroker(baselineRev);
  type Kind = "ours" | "relay" | "before";
  const kinds: Kind[] = ["ours"];
  if (process.env.BUS_OURS_ONLY !== "1") kinds.push("relay");
  if (baseline !== undefined) kinds.push("before");
  const results: Record<string, Record<Kind, Run[]>> = {};
  for (const shape of shapes) results[shape] = { ours: [], relay: [], before: [] };
  const runOf: Record<Kind, (shape: Shape) => Promise<Run>> = {
    ours: (shape) => ourRun(dir, shape),
    relay: (shape) => relayRun(shape),
    before: (shape) => ourRun(dir, shape, baseline),
  };
  for (let round = 0; round < rounds; round++) {
    // Each round rotates which kind goes first, so none always runs on the warmest (or the coldest) machine.
    const order = kinds.map((_, k) => kinds[(k + round) % kinds.length] as Kind);
    for (const shape of shapes) {
      const slot = results[shape] as Record<Kind, Run[]>;
      for (const kind of order) slot[kind].push(await runOf[kind](shape));
    }
  }
  const label: Record<Shape, string> = {
    flood: `flood of ${FLOOD}, 1 -> 1`,
    serial: `one at a time, ${SERIAL} messages`,
    "fan-in": `flood of ${FLOOD}, fan-in ${FAN_IN} -> 1`,
  };
  const perRound = (a: Run[], b: Run[]) => a.map((r, i) => r.msgsPerSec / (b[i]?.msgsPerSec ?? Number.NaN));
  const beforeName = `storeroom Broker${baseline?.clientModule === undefined ? "" : " + BusClient"} of ${baselineRev} (${baseline?.sha.slice(0, 7)})`;
  const rows = shapes.flatMap((shape) => {
    const { ours, relay, before } = results[shape] as Record<Kind, Run[]>;
    const row = (name: string, runs: Run[], extra: Record<string, string>) => {
      const lat = runs.flatMap((r) => r.latencies);
      return {
        group: `broker end to end: ${label[shape]} (200 B bodies, acks)`,
        case: name,
        "msgs/s (median)": Math.round(median(runs.map((r) => r.msgsPerSec))),
        "p50 ms": percentile(lat, 50).toFixed(2),
        "p99 ms": percentile(lat, 99).toFixed(2),
        "CPU µs/msg": median(runs.map((r) => r.cpuUsPerMsg)).toFixed(1),
        ...extra,
      };
    };
    const commits = (runs: Run[]) => median(runs.map((r) => r.commitsPerMsg ?? Number.NaN)).toFixed(2);
    const out = [
      row("storeroom Broker + BusClient", ours, {
        "x relay": median(perRound(ours, relay)).toFixed(2),
        "x relay (CPU)": median(ours.map((r, i) => (relay[i]?.cpuUsPerMsg ?? Number.NaN) / r.cpuUsPerMsg)).toFixed(2),
        ...(baseline === undefined ? {} : { "x before": median(perRound(ours, before)).toFixed(2) }),
        "commits/msg": commits(ours),
      }),
    ];
    if (relay.length > 0) out.push(row("bare ws relay (no storage, no HMAC, no audit)", relay, {}));
    if (before.length > 0) out.push(row(beforeName, before, { "commits/msg": commits(before) }));
    return out;
  });
  console.log(
    `\n## bus broker (paired with a bare ws relay${baseline === undefined ? "" : ` and the broker of ${baselineRev}`})`,
  );
  console.table(rows);
  const ratios = shapes.map((shape) => {
    const { ours, relay, before } = results[shape] as Record<Kind, Run[]>;
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(", ");
    return {
      shape,
      "ours / relay per round": fmt(perRound(ours, relay)),
      "ours / before per round": fmt(perRound(ours, before)),
    };
  });
  console.table(ratios);
  const [load1 = Number.NaN, load5 = Number.NaN] = loadavg();
  console.log(`load average at the end: ${load1.toFixed(1)} (1 min), ${load5.toFixed(1)} (5 min)`);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  writeFileSync(
    new URL("./results/bus-broker.json", import.meta.url),
    `${JSON.stringify({ suite: "bus-broker", date: new Date().toISOString(), node: process.version, rounds, baseline: baseline === undefined ? undefined : { rev: baselineRev, sha: baseline.sha }, loadavg: [load1, load5], rows, ratios }, null, 2)}\n`,
  );
}

export default async function busBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bus-bench-"));
  try {
    if (process.env.BUS_ONLY === "retention") {
      const set = await retentionCases(dir);
      try {
        await runSuite("bus-retention", set.cases);
      } finally {
        await set.close();
      }
      console.log(`load average at the end: ${loadavg()[0]?.toFixed(1)} (1 min)`);
      return;
    }
    if (process.env.BUS_ONLY !== "broker") {
      const sets = [await storeCases(dir), await auditCases(dir)];
      try {
        await runSuite("bus", [...sets.flatMap((set) => set.cases), ...blake3Cases()]);
      } finally {
        for (const set of sets) await set.close();
      }
    }
    await brokerSection(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
