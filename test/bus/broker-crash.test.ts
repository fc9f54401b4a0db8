import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/bus/audit-log.js";
import { BusClient } from "../../src/bus/bus-client.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, eventually, RawPeer, SECRET, TOKEN } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-crash-");
const child = fileURLToPath(new URL("./fixtures/broker-child.mjs", import.meta.url));
const dist = fileURLToPath(new URL("../../dist/bus/index.js", import.meta.url));
const ROUNDS = 4;

function spawnBroker(path: string): Promise<{ proc: ChildProcess; url: string }> {
  if (!existsSync(dist)) throw new Error("dist/bus/index.js is missing: run `npm run build` (npm test does)");
  const proc = spawn(process.execPath, [child, path, TOKEN, SECRET], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve({ proc, url: `ws://127.0.0.1:${m[1]}` });
    });
    proc.once("exit", (code) => reject(new Error(`broker exited early (${code})`)));
  });
}

/** What the database holds after a crash: message rows and the audit events about them. */
async function inspect(path: string) {
  const db = await openSqlite(path);
  try {
    const rows = await db.all<{ id: string; delivered: number; acked: number }>(
      "SELECT id, delivered, acked FROM bus_messages",
    );
    const audit = await AuditLog.open({ database: db, migrate: false });
    const events = (await audit.rows()).map(
      (r) => JSON.parse(Buffer.from(r.event).toString()) as { event: string; id: string },
    );
    const has = (event: string) => new Set(events.filter((e) => e.event === event).map((e) => e.id));
    return { rows, send: has("send"), deliver: has("deliver"), ack: has("ack"), broken: await audit.verify() };
  } finally {
    await db.close();
  }
}

describe("broker crash (SIGKILL under load, compiled broker in a child process)", () => {
  const procs: ChildProcess[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.exitCode === null) p.kill("SIGKILL");
  });

  // Broker processes started and killed in turn: slow on a loaded machine, so more time than a unit test.
  it(`loses nothing a recipient saw and keeps every row with its audit rows, over ${ROUNDS} crashes`, async () => {
    const path = dbPath(dir, "crash");
    const seen = new Set<string>();
    let stored = 0;
    let previous: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const broker = await spawnBroker(path);
      procs.push(broker.proc);
      const bob = new BusClient({
        url: broker.url,
        name: "bob",
        token: TOKEN,
        hmacSecret: SECRET,
        minBackoffMs: 5,
        maxBackoffMs: 20,
        onMessage: (m) => {
          seen.add(m.deliveryKey);
        },
        onError: () => {},
      });
      await bob.connect();
      // What earlier crashes left unacked comes back after the restart.
      const before = await inspect(path);
      await eventually(() => before.rows.every((r) => seen.has(r.id)), 10_000);
      const alice = await RawPeer.register(broker.url, "alice");
      // The sender cannot know what survived: it resends the last round, which is stored once.
      for (const id of previous) alice.sendMessage("alice", "bob", id, { id });
      await eventually(() => previous.every((id) => seen.has(id)), 10_000);
      const ids = Array.from({ length: 200 }, (_, i) => `r${round}-${String(i).padStart(3, "0")}`);
      previous = ids;
      for (const id of ids) alice.sendMessage("alice", "bob", id, { id });
      // Kill it mid-stream, once bob has seen part of this round.
      await eventually(() => ids.filter((id) => seen.has(id)).length >= 30, 10_000);
      broker.proc.kill("SIGKILL");
      await new Promise((r) => broker.proc.once("exit", r));
      await bob.close();
      await alice.closed;

      const after = await inspect(path);
      const ids_ = new Set(after.rows.map((r) => r.id));
      // Delivered only after its commit: everything a recipient saw is stored.
      expect([...seen].filter((id) => !ids_.has(id))).toEqual([]);
      // A message's row and its audit rows commit together: no crash window left.
      expect(after.rows.filter((r) => !after.send.has(r.id)).map((r) => r.id)).toEqual([]);
      expect(after.rows.filter((r) => r.delivered === 1 && !after.deliver.has(r.id)).map((r) => r.id)).toEqual([]);
      expect(after.rows.filter((r) => r.acked === 1 && !after.ack.has(r.id)).map((r) => r.id)).toEqual([]);
      expect(after.broken).toBeNull();
      expect(after.rows.length).toBeGreaterThan(stored);
      stored = after.rows.length;
    }
    expect(seen.size).toBeGreaterThanOrEqual(ROUNDS * 30);
  }, 90_000);
});
