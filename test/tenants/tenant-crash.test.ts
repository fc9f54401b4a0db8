import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";

const writerScript = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));
const built = fileURLToPath(new URL("../../dist/tenants/tenant-store.js", import.meta.url));
const ROUNDS = 50;
const PARALLEL = 3;
const SYNC_INTERVAL_MS = 50;
const users = ["ada", "bob"];

interface Crashed {
  /** Acknowledged row ids (even ids go to ada, odd ones to bob) and when they were acknowledged. */
  readonly acked: Map<number, number>;
  /** Per user, when the last publication round that finished before the kill had started. */
  readonly lastRoundStart: Map<string, number>;
  readonly longestRound: number;
  readonly killedAt: number;
}

const children = new Set<ChildProcess>();

/**
 * Runs the writer until `rounds` publication rounds and then `acks` more acknowledged writes
 * were reported, and kills it with SIGKILL: kill points spread over several sync intervals,
 * checkpoints and snapshots.
 */
async function crash(
  objectsRoot: string,
  cacheRoot: string,
  durability: string,
  org: string,
  rounds: number,
  acks: number,
): Promise<Crashed> {
  const child = spawn(
    process.execPath,
    [writerScript, objectsRoot, cacheRoot, durability, String(SYNC_INTERVAL_MS), org],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  children.add(child);
  const acked = new Map<number, number>();
  const lastRoundStart = new Map<string, number>();
  let longestRound = 0;
  let roundsSeen = 0;
  let acksAfterRounds = 0;
  let stderr = "";
  let buffer = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once("exit", (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const [kind, a, b, c] = buffer.slice(0, nl).split(" ");
        buffer = buffer.slice(nl + 1);
        if (kind === "ack") {
          acked.set(Number(a), Number(b));
          if (roundsSeen >= rounds) acksAfterRounds += 1;
        } else if (kind === "round") {
          roundsSeen += 1;
          lastRoundStart.set(a as string, Number(b));
          longestRound = Math.max(longestRound, Number(c) - Number(b));
        }
        nl = buffer.indexOf("\n");
      }
      if (roundsSeen >= rounds && acksAfterRounds >= acks) resolve();
    });
    void exited.then(() => reject(new Error(`writer exited early: ${stderr}`)));
  });
  const killedAt = Date.now();
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  children.delete(child);
  return { acked, lastRoundStart, longestRound, killedAt };
}

async function rows(store: TenantStore, org: string): Promise<Set<number>> {
  const found = new Set<number>();
  for (const user of users) {
    const db = await store.get(TenantKey.user(org, user));
    const tables = await db.all("SELECT name FROM sqlite_master WHERE name = 'notes'");
    if (tables.length === 0) continue;
    for (const r of await db.all<{ id: number }>("SELECT id FROM notes")) found.add(r.id);
  }
  return found;
}

interface RoundResult {
  acked: number;
  lostWithoutCache: number[];
  /** Lost writes acknowledged before the start of their tenant's last completed round (must be none). */
  lostBeforeRound: number[];
  oldestLossMs: number;
  longestRound: number;
  lostWithCache: number;
}

describe.runIf(existsSync(built))("kill -9 under load, then restart (built dist/ child, 50 rounds per mode)", () => {
  // A process kill leaves the page cache intact, so tmpfs loses nothing a disk would keep and spares the fsyncs.
  const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "storeroom-tenants-crash-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => {
    for (const c of children) c.kill("SIGKILL");
    children.clear();
  });

  for (const durability of ["sync", "async"]) {
    it(`${durability}: loses nothing on the same cache; ${durability === "sync" ? "nothing" : "only writes after the last finished round"} without it`, async () => {
      const objectsRoot = join(root, durability, "objects");
      const objects = new FileObjectStore({ root: objectsRoot });
      // A new machine: only object storage is left. One store serves every round's tenants.
      const elsewhere = await TenantStore.open({
        objectStore: objects,
        cacheRoot: join(root, durability, "elsewhere"),
      });
      const results: RoundResult[] = [];
      let next = 0;
      const round = async (i: number): Promise<RoundResult> => {
        const org = `r${i}`;
        const cacheRoot = join(root, durability, `cache-${i}`);
        const crashed = await crash(objectsRoot, cacheRoot, durability, org, i % 5, 1 + ((i * 37) % 60));
        const found = await rows(elsewhere, org);
        for (const user of users) await elsewhere.evict(TenantKey.user(org, user));
        const lostWithoutCache = [...crashed.acked.keys()].filter((id) => !found.has(id));
        // The same machine restarted: the crashed cache is adopted, then published on close.
        const restarted = await TenantStore.open({ objectStore: objects, cacheRoot });
        const onRestart = await rows(restarted, org);
        await restarted.close();
        // Every fifth round also checks that the restarted store published what it recovered.
        const afterRestart = i % 5 === 0 ? await rows(elsewhere, org) : onRestart;
        for (const user of users) await elsewhere.evict(TenantKey.user(org, user));
        rmSync(cacheRoot, { recursive: true, force: true });
        return {
          acked: crashed.acked.size,
          lostWithoutCache,
          lostBeforeRound: lostWithoutCache.filter(
            (id) => (crashed.acked.get(id) as number) < (crashed.lastRoundStart.get(users[id % 2] as string) ?? 0),
          ),
          oldestLossMs: Math.max(
            0,
            ...lostWithoutCache.map((id) => crashed.killedAt - (crashed.acked.get(id) as number)),
          ),
          longestRound: crashed.longestRound,
          lostWithCache: [...crashed.acked.keys()].filter((id) => !onRestart.has(id) || !afterRestart.has(id)).length,
        };
      };
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          while (next < ROUNDS) results.push(await round(next++));
        }),
      );
      await elsewhere.close();
      await objects.close();
      const sum = (f: (r: RoundResult) => number) => results.reduce((n, r) => n + f(r), 0);
      console.log(
        `${durability}: ${results.length} rounds, ${sum((r) => r.acked)} acknowledged writes; ` +
          `same cache lost ${sum((r) => r.lostWithCache)}; ` +
          `cache deleted lost ${sum((r) => r.lostWithoutCache.length)} in ${results.filter((r) => r.lostWithoutCache.length > 0).length} rounds ` +
          `(oldest ${Math.max(...results.map((r) => r.oldestLossMs))} ms before the kill; syncIntervalMs ${SYNC_INTERVAL_MS}, longest round ${Math.max(...results.map((r) => r.longestRound))} ms)`,
      );
      expect(results).toHaveLength(ROUNDS);
      expect(sum((r) => r.lostWithCache)).toBe(0);
      expect(sum((r) => r.lostBeforeRound.length)).toBe(0);
      if (durability === "sync") expect(sum((r) => r.lostWithoutCache.length)).toBe(0);
    }, 240_000);
  }
});
