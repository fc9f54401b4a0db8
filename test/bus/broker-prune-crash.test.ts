import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AuditLog } from "../../src/bus/audit-log.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-prune-crash-");
const child = fileURLToPath(new URL("./fixtures/prune-child.mjs", import.meta.url));
const dist = fileURLToPath(new URL("../../dist/bus/index.js", import.meta.url));
const ROUNDS = 24;

/** What one child printed before its SIGKILL (complete lines only: a torn last line proves nothing). */
interface Report {
  resumed: number;
  enqueued: string[];
  acked: Set<string>;
  /** Rows the prune job deleted after the first run (its counter includes that run). */
  pruned: number;
}

/** Runs the child on `path` and kills it with SIGKILL once it printed `cut` lines after RESUMED. */
async function runUntilKilled(path: string, round: number, cut: number): Promise<Report> {
  const proc = spawn(process.execPath, [child, path, String(round)], { stdio: ["ignore", "pipe", "inherit"] });
  let text = "";
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once("exit", (_code, signal) => resolve(signal)));
  proc.stdout.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    const lines = text.split("\n").slice(0, -1);
    const resumedAt = lines.findIndex((l) => l.startsWith("RESUMED "));
    if (resumedAt >= 0 && lines.length - resumedAt - 1 >= cut) proc.kill("SIGKILL");
  });
  const signal = await exited;
  expect(signal, `the child ended on its own: ${text.slice(-500)}`).toBe("SIGKILL");
  const report: Report = { resumed: -1, enqueued: [], acked: new Set(), pruned: 0 };
  for (const line of text.split("\n").slice(0, -1)) {
    const [kind, ...rest] = line.split(" ");
    if (kind === "RESUMED") report.resumed = Number(rest[0]);
    else if (kind === "E") report.enqueued.push(...rest);
    else if (kind === "A") for (const id of rest) report.acked.add(id);
    else if (kind === "P") report.pruned = Number(rest[0]) - report.resumed;
  }
  return report;
}

/** The message rows and the audit events about them, read from the file the child left. */
async function inspect(path: string) {
  const db = await openSqlite(path);
  try {
    const rows = await db.all<{ id: string; acked: number }>("SELECT id, acked FROM bus_messages");
    const audit = await AuditLog.open({ database: db, migrate: false });
    const events = (await audit.rows()).map(
      (r) => JSON.parse(Buffer.from(r.event).toString()) as { event: string; id: string },
    );
    const has = (event: string) => new Set(events.filter((e) => e.event === event).map((e) => e.id));
    return { rows, send: has("send"), ack: has("ack"), broken: await audit.verify(), auditRows: events.length };
  } finally {
    await db.close();
  }
}

describe("acked-message pruning under SIGKILL (compiled store, audit log and prune job in a child process)", () => {
  it(`over ${ROUNDS} kills: no unacked message is ever deleted, the audit chain stays whole, pruning resumes`, async () => {
    if (!existsSync(dist)) throw new Error("dist/bus/index.js is missing: run `npm run build` (npm test does)");
    const path = dbPath(dir, "prune-crash");
    const counts = { rounds: 0, enqueued: 0, acked: 0, prunedByJob: 0, prunedOnResume: 0, unackedKept: 0 };
    let leftAcked = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Kill points spread over the child's life: at its first prune, and after up to ~60 commits.
      const cut = (round * 37) % 61;
      const report = await runUntilKilled(path, round, cut);
      // The acked rows the previous kill left (all past the 10 ms retention by now) go at the first run.
      expect(report.resumed).toBe(leftAcked);
      const after = await inspect(path);
      expect(after.broken).toBeNull();
      const stored = new Set(after.rows.map((r) => r.id));
      // Everything reported stored is there unless its ack committed (only acked rows are pruned).
      expect(report.enqueued.filter((id) => !stored.has(id) && !after.ack.has(id))).toEqual([]);
      expect(report.enqueued.filter((id) => !report.acked.has(id) && !after.ack.has(id) && !stored.has(id))).toEqual(
        [],
      );
      // Over every round: a message that is gone was sent and acked; a row and its audit rows commit together.
      expect([...after.send].filter((id) => !stored.has(id) && !after.ack.has(id))).toEqual([]);
      expect(after.rows.filter((r) => !after.send.has(r.id)).map((r) => r.id)).toEqual([]);
      expect(after.rows.filter((r) => r.acked === 1 && !after.ack.has(r.id)).map((r) => r.id)).toEqual([]);
      expect(after.rows.filter((r) => r.acked === 0 && after.ack.has(r.id)).map((r) => r.id)).toEqual([]);
      leftAcked = after.rows.filter((r) => r.acked === 1).length;
      counts.rounds += 1;
      counts.enqueued += report.enqueued.length;
      counts.acked += report.acked.size;
      counts.prunedByJob += report.pruned;
      counts.prunedOnResume += report.resumed;
      counts.unackedKept = after.rows.filter((r) => r.acked === 0).length;
    }
    // Enough happened for the rounds to mean something: messages, acks and prunes across kills.
    expect(counts.enqueued).toBeGreaterThan(ROUNDS * 20);
    expect(counts.prunedByJob).toBeGreaterThan(0);
    expect(counts.prunedOnResume).toBeGreaterThan(0);
    expect(counts.unackedKept).toBeGreaterThan(0);
    console.log(`prune crash: ${JSON.stringify(counts)}`);
  }, 60_000);
});
