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
const ROUNDS = 10;
const MAX_PER_ROUND = 150;

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
  it(`loses nothing over ${ROUNDS} crashes: what a recipient saw was stored with its audit rows, every unacked row comes back, acked ones never`, async () => {
    const path = dbPath(dir, "crash");
    /** Every delivery bob was handed, over all rounds (delivery keys). */
    const seen = new Set<string>();
    /** Every id a sender sent at least once. */
    const sent = new Set<string>();
    const counts = { deliveries: 0, redeliveredAfterCrash: 0, resent: 0, unstoredAtCrash: 0 };
    let previous: string[] = [];
    let last = { rows: [] as { id: string; acked: number }[] };

    /** Starts a broker on the file, connects bob and checks what the last crash left comes back as it should. */
    async function restart() {
      const broker = await spawnBroker(path);
      procs.push(broker.proc);
      const round = new Set<string>();
      const bob = new BusClient({
        url: broker.url,
        name: "bob",
        token: TOKEN,
        hmacSecret: SECRET,
        minBackoffMs: 5,
        maxBackoffMs: 20,
        onMessage: (m) => {
          counts.deliveries++;
          seen.add(m.deliveryKey);
          round.add(m.deliveryKey);
        },
        onError: () => {},
      });
      await bob.connect();
      const unacked = last.rows.filter((r) => r.acked === 0).map((r) => r.id);
      await eventually(() => unacked.every((id) => round.has(id)), 10_000);
      counts.redeliveredAfterCrash += unacked.length;
      // Two senders, so commits group the writes of several connections.
      const senders = await Promise.all(["alice", "carol"].map((name) => RawPeer.register(broker.url, name)));
      // A sender cannot know what survived: it resends the last round, which is stored once.
      previous.forEach((id, i) => {
        const from = i % 2 === 0 ? "alice" : "carol";
        (senders[i % 2] as RawPeer).sendMessage(from, "bob", id, { id });
      });
      counts.resent += previous.length;
      await eventually(() => previous.every((id) => seen.has(id)), 10_000);
      return { broker, bob, senders, round };
    }

    for (let r = 0; r < ROUNDS; r++) {
      const { broker, bob, senders, round } = await restart();
      // Both senders stream until the broker dies (at most MAX_PER_ROUND), so the kill also cuts messages in flight.
      const ids: string[] = [];
      let streaming = true;
      const stream = async () => {
        while (streaming && ids.length < MAX_PER_ROUND) {
          for (let k = 0; k < 4; k++) {
            const id = `r${r}-${String(ids.length).padStart(3, "0")}`;
            const i = ids.length;
            const peer = senders[i % 2] as RawPeer;
            if (peer.ws.readyState !== peer.ws.OPEN) return;
            ids.push(id);
            sent.add(id);
            peer.sendMessage(i % 2 === 0 ? "alice" : "carol", "bob", id, { id });
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const streamed = stream();
      // Kill it at a different point each round, once bob has seen part of this round.
      const cut = 5 + ((r * 7) % 40);
      await eventually(() => ids.filter((id) => seen.has(id)).length >= cut, 10_000);
      broker.proc.kill("SIGKILL");
      await new Promise((resolve) => broker.proc.once("exit", resolve));
      streaming = false;
      await streamed;
      previous = ids;
      await bob.close();
      await Promise.all(senders.map((s) => s.closed));

      const after = await inspect(path);
      const stored = new Set(after.rows.map((row) => row.id));
      // Delivered only after its commit: everything a recipient saw is stored.
      expect([...seen].filter((id) => !stored.has(id))).toEqual([]);
      // A row acked before the crash never comes back: bob saw none of them again after the last restart.
      const ackedBefore = last.rows.filter((row) => row.acked === 1).map((row) => row.id);
      expect(ackedBefore.filter((id) => round.has(id))).toEqual([]);
      // A message's row and its audit rows commit together: no crash window left.
      expect(after.rows.filter((row) => !after.send.has(row.id)).map((row) => row.id)).toEqual([]);
      expect(
        after.rows.filter((row) => row.delivered === 1 && !after.deliver.has(row.id)).map((row) => row.id),
      ).toEqual([]);
      expect(after.rows.filter((row) => row.acked === 1 && !after.ack.has(row.id)).map((row) => row.id)).toEqual([]);
      expect(after.broken).toBeNull();
      expect(after.rows.length).toBeGreaterThan(last.rows.length);
      counts.unstoredAtCrash += ids.filter((id) => !stored.has(id)).length;
      last = after;
    }

    // One clean restart: the last round's unacked rows come back and its resends fill what never arrived.
    const { broker, bob, senders } = await restart();
    const lost = [...sent].filter((id) => !seen.has(id));
    expect(lost).toEqual([]);
    let final = last;
    await eventually(async () => {
      final = await inspect(path);
      return final.rows.every((row) => row.acked === 1);
    }, 10_000);
    expect(final.rows.length).toBe(sent.size);
    await bob.close();
    await Promise.all(senders.map((s) => s.close()));
    broker.proc.kill("SIGTERM");
    await new Promise((resolve) => broker.proc.once("exit", resolve));
    console.log(
      `bus crash: ${ROUNDS} SIGKILLs, ${sent.size} messages sent (${counts.resent} resent after a crash), ` +
        `${counts.unstoredAtCrash} of them not yet stored when the broker died, ` +
        `${final.rows.length} stored and acked in the end, ${counts.deliveries} deliveries, ` +
        `${counts.redeliveredAfterCrash} unacked rows redelivered after a restart, ${lost.length} lost`,
    );
  }, 120_000);
});
