import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Database, openPostgres, openSqlite } from "../../src/sql/index.js";
import { type StateEvent, StateStore } from "../../src/state/index.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

const distState = fileURLToPath(new URL("../../dist/state/index.js", import.meta.url));
const distSql = fileURLToPath(new URL("../../dist/sql/index.js", import.meta.url));

/**
 * Writes forever with every kind of versioned write (set, compare-and-set, a batch across groups,
 * delete, a transaction), printing each change only after its write resolved (acknowledged), as
 * `version type group key value` lines.
 */
const writer = `import { StateStore } from ${JSON.stringify(distState)};
  import { openPostgres, openSqlite } from ${JSON.stringify(distSql)};
  const [kind, target, round] = process.argv.slice(1);
  const db = kind === "postgres" ? await openPostgres(target, { max: 2 }) : await openSqlite(target);
  const s = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 0 });
  const ack = (lines) => process.stdout.write(lines.map((l) => l.join(" ")).join("\\n") + "\\n");
  for (let i = 0; ; i++) {
    const key = "k" + (i % 7);
    const value = "r" + round + "i" + i;
    switch (i % 5) {
      case 0:
        ack([[await s.set("a", key, value), "set", "a", key, value]]);
        break;
      case 1: {
        const e = await s.getEntry("b", key);
        ack([[await s.set("b", key, value, { ifVersion: e?.version ?? null }), "set", "b", key, value]]);
        break;
      }
      case 2: {
        const ops = [
          { type: "set", group: "a", key, value },
          { type: "set", group: "c", key, value },
          { type: "delete", group: "b", key: "k" + ((i + 3) % 7) },
        ];
        const { versions } = await s.batch(ops);
        ack(ops.flatMap((o, j) => (versions[j] === null ? [] : [[versions[j], o.type, o.group, o.key, o.value ?? "-"]])));
        break;
      }
      case 3: {
        const e = await s.getEntry("a", key);
        if (e === null) break;
        const { version } = await s.batch([{ type: "delete", group: "a", key }], {
          checks: [{ group: "a", key, version: e.version }],
        });
        ack([[version, "delete", "a", key, "-"]]);
        break;
      }
      default: {
        const v = await s.transaction(async (tx) => {
          const first = await tx.set("c", key, value);
          const second = await tx.set("a", key, value);
          return [first, second];
        });
        ack([[v[0], "set", "c", key, value], [v[1], "set", "a", key, value]]);
      }
    }
  }`;

interface Ack {
  readonly version: number;
  readonly type: "set" | "delete";
  readonly group: string;
  readonly key: string;
  readonly value: string;
}

/** Starts a writer, kills it with SIGKILL once it acknowledged `acks` changes; returns them. */
async function killedWriter(kind: "sqlite" | "postgres", target: string, round: number, acks: number): Promise<Ack[]> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", writer, kind, target, String(round)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acked: Ack[] = [];
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const [version, type, group, key, value] = line.split(" ");
        acked.push({ version: Number(version), type: type as Ack["type"], group, key, value } as Ack);
      }
      if (acked.length >= acks && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        resolve();
      }
    });
    child.on("exit", (_code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer exited early: ${stderr}`));
    });
  });
  expect(await exited).toBe("SIGKILL");
  return acked;
}

/** Every change in the log, oldest first. */
async function wholeLog(state: StateStore, base: number): Promise<StateEvent[]> {
  const out: StateEvent[] = [];
  let after = base;
  for (;;) {
    const page = await state.changesSince(after, { limit: 1000 });
    expect(page.reset).toBe(false);
    out.push(...page.changes);
    if (!page.more) return out;
    after = out[out.length - 1]?.version ?? after;
  }
}

function crashRounds(
  kind: "sqlite" | "postgres",
  rounds: number,
  open: () => Promise<{ db: Database; target: string }>,
) {
  it(`writers killed with SIGKILL under load lose no acknowledged version; versions grow strictly; the change log matches the values (${rounds} rounds)`, async () => {
    if (!existsSync(distState)) throw new Error("dist/state/index.js is missing: run `npm run build` (npm test does)");
    const { db, target } = await open();
    const setup = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 0 });
    const base = await setup.version();
    await setup.close();
    const counts = { rounds, acknowledged: 0, logged: 0, unacknowledgedCommitted: 0 };
    let highest = base;
    for (let round = 0; round < rounds; round++) {
      const acked = await killedWriter(kind, target, round, 40 + ((round * 37) % 60));
      const state = await StateStore.open({ database: db, purgeIntervalMs: 0, changePollIntervalMs: 0 });
      try {
        const log = await wholeLog(state, base);
        const byVersion = new Map(log.map((c) => [c.version, c]));
        // Versions: strictly increasing and without gaps in the log, above every earlier round.
        const versions = log.map((c) => c.version);
        expect(versions).toEqual(Array.from({ length: log.length }, (_, i) => (versions[0] ?? 0) + i));
        expect(await state.version()).toBe(versions[versions.length - 1]);
        const ackedVersions = acked.map((a) => a.version);
        expect(Math.min(...ackedVersions)).toBeGreaterThan(highest);
        expect(new Set(ackedVersions).size).toBe(acked.length);
        // Every acknowledged change is in the log as acknowledged.
        for (const a of acked) {
          const c = byVersion.get(a.version);
          expect(c, `version ${a.version}`).toBeDefined();
          expect([c?.type, c?.group, c?.key, c?.value ?? "-"]).toEqual([a.type, a.group, a.key, a.value]);
        }
        // The values are what the log says last, with its versions; what the log says last was not lost.
        const last = new Map<string, StateEvent>();
        for (const c of log) last.set(`${c.group}/${c.key}`, c);
        for (const group of ["a", "b", "c"]) {
          const entries = await state.getEntries(group, { limit: 1000 });
          const live = new Map(entries.map((e) => [`${group}/${e.key}`, e]));
          for (const [id, c] of last) {
            if (c.group !== group) continue;
            const entry = live.get(id);
            if (c.type === "set") expect([entry?.value, entry?.version], id).toEqual([c.value, c.version]);
            else expect(entry, id).toBeUndefined();
          }
          for (const id of live.keys()) expect(last.get(id)?.type, id).toBe("set");
        }
        const maxAcked = Math.max(...ackedVersions);
        counts.acknowledged += acked.length;
        counts.unacknowledgedCommitted += versions.filter((v) => v > maxAcked && v > highest).length;
        counts.logged = log.length;
        highest = versions[versions.length - 1] ?? highest;
      } finally {
        await state.close();
      }
    }
    console.log(`state versions crash (${kind}): ${JSON.stringify(counts)}`);
    await db.close();
  }, 120_000);
}

describe("sqlite: versioned writes survive SIGKILL", () => {
  const dir = useTempDir("storeroom-versions-crash-");
  crashRounds("sqlite", 8, async () => {
    const target = join(dir, "crash.db");
    return { db: await openSqlite(target), target };
  });
});

describe.runIf(hasPostgres)("postgres: versioned writes survive SIGKILL", () => {
  const pg = useFreshPostgresDatabase();
  crashRounds("postgres", 4, async () => ({ db: await openPostgres(pg.url, { max: 2 }), target: pg.url }));
});
