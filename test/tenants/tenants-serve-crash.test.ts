import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { type ServeProcess, startServe } from "../e2e/serve-process.js";

const built = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const ROUNDS = 6;
const CONNECTIONS = 4;
/** `storeroom serve`'s default publication interval in `async` durability. */
const SYNC_INTERVAL_MS = 1000;
/** Allowance on top of it for the publication in flight at the kill, on a loaded machine. */
const UPLOAD_ALLOWANCE_MS = 5000;

const tokenOf = (user: string) => `acme-${user}-token-0123456789`;

function writeTokens(dir: string, users: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "tokens.json"),
    JSON.stringify({ tokens: users.map((u) => ({ token: tokenOf(u), orgId: "acme", userId: u })) }),
  );
}

/**
 * Keys of `user` that `server` does not return with their acknowledged value. A key answered
 * with neither 200 nor 404 (the server busy on a loaded machine) is asked again a few times
 * before it counts; one that counts is printed when its status is not 404, or always with `printAll`.
 */
async function missing(
  server: ServeProcess,
  user: string,
  acked: Map<string, number>,
  printAll = false,
): Promise<string[]> {
  const lost: string[] = [];
  for (const key of acked.keys()) {
    if (!key.startsWith(`${user}/`)) continue;
    let status = 0;
    let body = "";
    for (let attempt = 0; attempt < 5; attempt++) {
      const res = await fetch(`${server.url}/v1/state/notes/${encodeURIComponent(key)}`, {
        headers: { authorization: `Bearer ${tokenOf(user)}` },
      });
      status = res.status;
      body = await res.text();
      if (status === 200 || status === 404) break;
    }
    if (status !== 200 || body !== `value of ${key}`) {
      lost.push(key);
      if (printAll || status !== 404) console.log(`missing ${key}: ${status} ${body.slice(0, 200)}`);
    }
  }
  return lost;
}

/**
 * Writes with `CONNECTIONS` concurrent clients to the tenants of `users` until `acks`
 * writes were acknowledged (204) and `ms` passed, then kills the server with SIGKILL while
 * requests are in flight. Returns every acknowledged key with the time of its acknowledgement.
 */
async function loadAndKill(
  server: ServeProcess,
  users: string[],
  acks: number,
  ms: number,
): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  const until = Date.now() + ms;
  let next = 0;
  let killed = false;
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (!killed) {
        const user = users[next % users.length] as string;
        const key = `${user}/k${next++}`;
        try {
          const res = await fetch(`${server.url}/v1/state/notes/${encodeURIComponent(key)}`, {
            method: "PUT",
            headers: { authorization: `Bearer ${tokenOf(user)}` },
            body: `value of ${key}`,
          });
          const body = await res.text();
          if (res.status === 204) acked.set(key, Date.now());
          else throw new Error(`PUT ${key} answered ${res.status}: ${body}`);
        } catch (err) {
          // A connection the kill cut: the write was never acknowledged.
          if (killed) continue;
          killed = true;
          server.child.kill("SIGKILL");
          throw err;
        }
        if (!killed && acked.size >= acks && Date.now() >= until) {
          killed = true;
          server.child.kill("SIGKILL");
        }
      }
    }),
  );
  await exited;
  return acked;
}

describe.runIf(existsSync(built))("kill -9 `storeroom serve` under HTTP load (built CLI)", () => {
  // A process kill leaves the page cache intact, so tmpfs loses nothing a disk would keep and spares the fsyncs.
  const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "storeroom-serve-crash-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  describe.concurrent.each(["sync", "async"])("%s durability", (durability) => {
    it(`restarting on the same data dir loses 0 acknowledged writes; a new data dir loses ${durability === "sync" ? "0" : `only writes younger than ${SYNC_INTERVAL_MS} ms + one upload`}`, async () => {
      const users = Array.from({ length: ROUNDS * 2 }, (_, i) => `u${i}`);
      const objects = `file://${join(root, durability, "objects")}`;
      const data = join(root, durability, "data");
      const elsewhere = join(root, durability, "elsewhere");
      writeTokens(data, users);
      writeTokens(elsewhere, users);
      writeTokens(join(root, durability, "final"), users);
      const args = ["--objects", objects, "--durability", durability];
      // A new machine: only object storage is left. It reads each round's tenants right after the kill.
      const fresh = await startServe(["--data", elsewhere, ...args]);
      let server = await startServe(["--data", data, ...args]);
      let acked = 0;
      const all = new Map<string, number>();
      let lostWithDisk = 0;
      let lostAfterShutdown = 0;
      const lostWithoutDisk: number[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          // Two tenants per round; kills land at different depths of their publication, and
          // every third round runs past a few publication intervals.
          const tenants = [`u${2 * round}`, `u${2 * round + 1}`];
          const writes = await loadAndKill(server, tenants, 5 + ((round * 37) % 60), round % 3 === 2 ? 2500 : 0);
          const killedAt = Date.now();
          acked += writes.size;
          for (const [key, at] of writes) all.set(key, at);
          for (const user of tenants) {
            for (const key of await missing(fresh, user, writes))
              lostWithoutDisk.push(killedAt - (writes.get(key) ?? 0));
          }
          // The same machine restarted on its data directory: the crashed cache is adopted and published.
          server = await startServe(["--data", data, ...args]);
          for (const user of tenants) lostWithDisk += (await missing(server, user, writes, true)).length;
        }
        // A clean shutdown of the last restart publishes everything the restarts adopted: a new machine has it all.
        expect((await server.stop()).code).toBe(0);
        const final = await startServe(["--data", join(root, durability, "final"), ...args]);
        try {
          for (const user of users) lostAfterShutdown += (await missing(final, user, all, true)).length;
        } finally {
          await final.stop("SIGKILL");
        }
      } finally {
        await server.stop("SIGKILL");
        await fresh.stop("SIGKILL");
      }
      const oldest = Math.max(0, ...lostWithoutDisk);
      console.log(
        `serve ${durability}: ${ROUNDS} kill -9 rounds, ${acked} acknowledged writes; same data dir lost ${lostWithDisk}; ` +
          `new data dir lost ${lostWithoutDisk.length} (oldest acknowledged ${oldest} ms before the kill); ` +
          `after a clean shutdown of the last restart a new data dir lost ${lostAfterShutdown}`,
      );
      expect(acked).toBeGreaterThan(ROUNDS * 5 - 1);
      expect(lostWithDisk).toBe(0);
      expect(lostAfterShutdown).toBe(0);
      if (durability === "sync") expect(lostWithoutDisk).toEqual([]);
      else expect(oldest).toBeLessThan(SYNC_INTERVAL_MS + UPLOAD_ALLOWANCE_MS);
    }, 120_000);
  });
});
