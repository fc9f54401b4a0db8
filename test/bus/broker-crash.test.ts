import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { BusClient } from "../../src/bus/bus-client.js";
import { MessageStore } from "../../src/bus/message-store.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, eventually, RawPeer, SECRET, TOKEN } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-crash-");
const script = fileURLToPath(new URL("./fixtures/broker-process.ts", import.meta.url));

function spawnBroker(path: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", script, path], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve({ child, url: `ws://127.0.0.1:${m[1]}` });
    });
    child.once("exit", (code) => reject(new Error(`broker exited early (${code})`)));
  });
}

async function storedIds(path: string): Promise<Set<string>> {
  const db = await openSqlite(path);
  try {
    const rows = await db.all<{ id: string }>("SELECT id FROM bus_messages");
    return new Set(rows.map((r) => r.id));
  } finally {
    await db.close();
  }
}

describe("broker crash (SIGKILL)", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it("loses no enqueued message; resends after the restart are stored once", async () => {
    const path = dbPath(dir, "crash");
    const first = await spawnBroker(path);
    children.push(first.child);
    const bob = await RawPeer.register(first.url, "bob");
    await bob.close();
    const alice = await RawPeer.register(first.url, "alice");
    const ids = Array.from({ length: 300 }, (_, i) => `m${String(i).padStart(4, "0")}`);
    for (const id of ids) alice.sendMessage("alice", "bob", id, { id });
    // Kill the broker mid-stream, once some messages are durably queued.
    await eventually(async () => (await storedIds(path)).size >= 50, 10_000);
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    await alice.closed;
    const survived = await storedIds(path);
    expect(survived.size).toBeGreaterThanOrEqual(50);

    const second = await spawnBroker(path);
    children.push(second.child);
    const got: string[] = [];
    const receiver = new BusClient({
      url: second.url,
      name: "bob",
      token: TOKEN,
      hmacSecret: SECRET,
      onMessage: (m) => {
        got.push(m.id);
      },
    });
    await receiver.connect();
    // Every message that was stored before the crash arrives, in send order.
    await eventually(() => got.length >= survived.size, 10_000);
    expect(got.slice(0, survived.size)).toEqual([...survived].sort());
    // The sender does not know what survived, so it resends everything: duplicates are stored once.
    const again = await RawPeer.register(second.url, "alice");
    for (const id of ids) again.sendMessage("alice", "bob", id, { id });
    await eventually(() => got.length === ids.length, 15_000);
    expect(got).toEqual(ids);
    await again.close();
    await receiver.close();
    second.child.kill("SIGTERM");
    await new Promise((r) => second.child.once("exit", r));
    const db = await openSqlite(path);
    const store = await MessageStore.open({ database: db });
    expect(await store.pendingFor("bob")).toEqual([]);
    expect((await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM bus_messages"))?.n).toBe(ids.length);
    await db.close();
  });
});
