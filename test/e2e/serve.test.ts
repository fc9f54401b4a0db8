import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it, vi } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { TestPeer } from "../server/bus-peer.js";
import { startProxiedS3rver } from "../support/s3rver.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";
import { type ServeProcess, startServe } from "./serve-process.js";

const MiB = 1024 * 1024;
const cli = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const busSecret = "e2e-bus-secret-".padEnd(40, "x");
const token = { acme: "acme-e2e-token-000000", globex: "globex-e2e-token-00000", ada: "ada-e2e-token-000000000" };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function writeTokens(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, "tokens.json"),
    JSON.stringify({
      tokens: [
        { token: token.acme, orgId: "acme" },
        { token: token.ada, orgId: "acme", userId: "ada" },
        { token: token.globex, orgId: "globex" },
      ],
    }),
  );
}

const running = new Set<ServeProcess>();
async function serve(args: string[]): Promise<ServeProcess> {
  const p = await startServe([...args, "--bus-hmac-secret", busSecret]);
  running.add(p);
  return p;
}
async function stop(p: ServeProcess) {
  running.delete(p);
  return p.stop("SIGTERM");
}
afterAll(async () => {
  for (const p of running) await p.stop("SIGKILL");
});

describe("storeroom serve (built CLI, child process)", () => {
  const root = useTempDir("storeroom-e2e-");

  it("starts on embedded defaults, generates a token and prints how to use it", async () => {
    const p = await serve(["--data", join(root, "fresh")]);
    expect(p.listening).toMatchObject({ auth: "token", inspector: true });
    const generated = p.listening.generatedToken as string;
    expect(generated.length).toBeGreaterThanOrEqual(16);
    expect(await (await fetch(`${p.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect((await fetch(`${p.url}/v1/whoami`)).status).toBe(401);
    expect(await (await fetch(`${p.url}/v1/whoami`, { headers: bearer(generated) })).json()).toEqual({
      identity: { orgId: "default", roles: ["operator"] },
    });
    expect((await fetch(`${p.url}/`)).headers.get("content-type")).toMatch(/text\/html/);
    const { code, stopped } = await stop(p);
    expect(code).toBe(0);
    expect(stopped).toMatchObject({ flushed: true, errors: [] });
  });

  it("runs on the SQLite engine --sqlite-engine names, and a data directory moves between engines", async () => {
    const data = join(root, "engines");
    writeTokens(data);
    const engines = availableSqliteEngines();
    let written = 0;
    // Every engine in turn on one data directory (control, tenant and bus databases): each
    // start reads what the previous engine wrote, and adds its own.
    for (const engine of [...engines, ...engines]) {
      const p = await serve(["--data", data, "--sqlite-engine", engine]);
      expect(p.listening.sqliteEngine).toBe(engine);
      for (let i = 0; i < written; i++) {
        const res = await fetch(`${p.url}/v1/state/prefs/k${i}`, { headers: bearer(token.acme) });
        expect([i, await res.text()]).toEqual([i, `v${i}`]);
      }
      const put = await fetch(`${p.url}/v1/state/prefs/k${written}`, {
        method: "PUT",
        headers: bearer(token.acme),
        body: `v${written}`,
      });
      expect(put.status).toBe(204);
      written++;
      expect(await stop(p)).toMatchObject({ code: 0, stopped: { flushed: true } });
    }
    expect(written).toBe(engines.length * 2);
  });

  it("refuses an unknown or unavailable SQLite engine at startup with exit code 2", () => {
    const run = (engine: string) =>
      spawnSync(
        process.execPath,
        [cli, "serve", "--port", "0", "--data", join(root, "bad-engine"), "--sqlite-engine", engine],
        {
          encoding: "utf8",
        },
      );
    const unknown = run("sqlite4");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("--sqlite-engine must be one of node:sqlite, better-sqlite3");
    if (!availableSqliteEngines().includes("node:sqlite")) {
      const missing = run("node:sqlite");
      expect(missing.status).toBe(2);
      expect(missing.stderr).toContain("needs Node.js 22.16");
    }
  });

  it("serves state, events, uploads and the bus to isolated tenants, rejects bad input, and survives SIGTERM", async () => {
    const objects = `file://${join(root, "shared-objects")}`;
    const dataA = join(root, "a");
    writeTokens(dataA);
    const a = await serve(["--data", dataA, "--objects", objects]);
    const u = a.url;

    // SSE first, so the writes below show up as events.
    const events = await fetch(`${u}/v1/state/prefs/events`, { headers: bearer(token.acme) });
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();

    const acked: [string, string, string][] = [];
    for (let i = 0; i < 20; i++) {
      for (const [who, t] of Object.entries(token)) {
        const res = await fetch(`${u}/v1/state/prefs/k${i}`, {
          method: "PUT",
          headers: bearer(t),
          body: `${who}-${i}`,
        });
        expect(res.status).toBe(204);
        acked.push([t, `k${i}`, `${who}-${i}`]);
      }
    }
    let text = "";
    while (!text.includes('"key":"k1"')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('"value":"acme-0"');
    expect(text).not.toContain("globex-");
    expect(text).not.toContain("ada-");
    await reader.cancel();

    // Tenants never see each other's data.
    expect(await (await fetch(`${u}/v1/state/prefs/k3`, { headers: bearer(token.globex) })).text()).toBe("globex-3");
    expect(await (await fetch(`${u}/v1/state/prefs/k3`, { headers: bearer(token.ada) })).text()).toBe("ada-3");
    const page = (await (await fetch(`${u}/v1/state/prefs?limit=5`, { headers: bearer(token.acme) })).json()) as {
      total: number;
    };
    expect(page.total).toBe(20);

    // Bad input: an error with a stable code and nothing changed.
    const cases: [string, RequestInit, number, string][] = [
      ["/v1/state/prefs/k1", { method: "PUT", body: "x" }, 401, "UNAUTHENTICATED"],
      [
        "/v1/state/prefs/k1",
        { method: "PUT", headers: { "x-org-id": "acme", "x-storeroom-gateway-secret": "y".repeat(40) }, body: "x" },
        401,
        "UNAUTHENTICATED",
      ],
      [
        "/v1/state/prefs/k1",
        { method: "PUT", headers: bearer(token.acme), body: Buffer.alloc(MiB + 1) },
        413,
        "TOO_LARGE",
      ],
      ["/v1/state/prefs/k1?ttl=-1", { method: "PUT", headers: bearer(token.acme), body: "x" }, 400, "INVALID_ARGUMENT"],
      ["/v1/files/priv%2F..%2F..%2Fetc%2Fpasswd", { headers: bearer(token.acme) }, 400, "INVALID_KEY"],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(`${u}${path}`, init);
      expect(res.status, path).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe(code);
    }
    expect(await (await fetch(`${u}/v1/state/prefs/k1`, { headers: bearer(token.acme) })).text()).toBe("acme-1");

    // An upload in two parts, completed, downloadable by its owner.
    const file = Buffer.alloc(5 * MiB, 7);
    const init = (await (
      await fetch(`${u}/v1/uploads`, {
        method: "POST",
        headers: { ...bearer(token.ada), "content-type": "application/json" },
        body: JSON.stringify({ filename: "a.zip", size: file.length }),
      })
    ).json()) as { claimId: string; partSize: number; partCount: number };
    for (let n = 1; n <= init.partCount; n++) {
      const body = file.subarray((n - 1) * init.partSize, n * init.partSize);
      expect(
        (await fetch(`${u}/v1/uploads/${init.claimId}/parts/${n}`, { method: "PUT", headers: bearer(token.ada), body }))
          .status,
      ).toBe(200);
    }
    const done = (await (
      await fetch(`${u}/v1/uploads/${init.claimId}/complete`, { method: "POST", headers: bearer(token.ada) })
    ).json()) as { url: string };

    // The bus: peers of one org talk; the same name in another org hears nothing.
    const ws = `${u.replace("http", "ws")}/v1/bus`;
    const alice = await TestPeer.connect(ws, bearer(token.acme), "alice", busSecret);
    const bob = await TestPeer.connect(ws, bearer(token.ada), "bob", busSecret);
    const spy = await TestPeer.connect(ws, bearer(token.globex), "bob", busSecret);
    alice.send("bob", { hi: 1 }, "e2e-1");
    expect((await bob.waitFor(1)).map((e) => e.id)).toEqual(["e2e-1"]);
    expect(spy.deliveries).toEqual([]);
    for (const p of [alice, bob, spy]) p.close();

    const metrics = await (await fetch(`${u}/metrics`, { headers: bearer(token.acme) })).text();
    expect(metrics).toMatch(
      /storeroom_http_requests_total\{method="PUT",route="\/v1\/state\/:group\/:key",status="204"\} 60/,
    );
    expect(metrics).toMatch(/storeroom_resident_tenants \d+/);

    const { code, stopped } = await stop(a);
    expect(stopped).toMatchObject({ flushed: true });
    expect(code).toBe(0);

    // The standalone tenants command reads the server's object store as is.
    const listed = spawnSync(process.execPath, [cli, "tenants", "ls", "--objects", objects, "--json"], {
      encoding: "utf8",
    });
    expect(listed.status).toBe(0);
    const keys = (JSON.parse(listed.stdout) as { tenants: { key: string }[] }).tenants.map((t) => t.key);
    expect(keys).toEqual(expect.arrayContaining(["acme/org", "acme/users/ada", "globex/org"]));

    // A fresh server with an EMPTY cache on the same object store sees every acknowledged write.
    const dataB = join(root, "b");
    writeTokens(dataB);
    const b = await serve(["--data", dataB, "--objects", objects, "--database", join(dataA, "control.db")]);
    for (const [t, key, value] of acked) {
      expect(await (await fetch(`${b.url}/v1/state/prefs/${key}`, { headers: bearer(t) })).text()).toBe(value);
    }
    const download = await fetch(`${b.url}${done.url}`, { headers: bearer(token.ada) });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(file)).toBe(true);
    expect((await stop(b)).code).toBe(0);
  });

  it("prunes acked messages of every org bus after --acked-retention-ms, never an unacked one", async () => {
    const data = join(root, "bus-retention");
    writeTokens(data);
    for (const [flag, value] of [
      ["--acked-retention-ms", "soon"],
      ["--bus-prune-interval-ms", "-1"],
    ] as const) {
      const refused = spawnSync(process.execPath, [cli, "serve", "--port", "0", "--data", data, flag, value], {
        encoding: "utf8",
      });
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain(`${flag} must be a whole number of ms`);
    }
    // The retention comes from the environment, the prune interval from a flag.
    const p = await startServe(["--data", data, "--bus-hmac-secret", busSecret, "--bus-prune-interval-ms", "20"], {
      STOREROOM_BUS_ACKED_RETENTION_MS: "0",
    });
    running.add(p);
    const metric = async (name: string) => {
      const text = await (await fetch(`${p.url}/metrics`, { headers: bearer(token.acme) })).text();
      return Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
    };
    const ws = `${p.url.replace("http", "ws")}/v1/bus`;
    (await TestPeer.connect(ws, bearer(token.acme), "carol", busSecret)).close();
    const alice = await TestPeer.connect(ws, bearer(token.acme), "alice", busSecret);
    const bob = await TestPeer.connect(ws, bearer(token.ada), "bob", busSecret);
    await vi.waitFor(async () => expect(await metric("storeroom_bus_peers")).toBe(2), { timeout: 10_000 });
    const g1 = await TestPeer.connect(ws, bearer(token.globex), "g1", busSecret);
    const g2 = await TestPeer.connect(ws, bearer(token.globex), "g2", busSecret);
    alice.send("carol", { offline: true }, "kept");
    alice.send("bob", { n: 1 }, "a1");
    g1.send("g2", { n: 1 }, "g1");
    await bob.waitFor(1);
    await g2.waitFor(1);
    await vi.waitFor(async () => expect(await metric("storeroom_bus_acked_pruned_total")).toBe(2), {
      timeout: 10_000,
      interval: 20,
    });
    for (const peer of [alice, bob, g1, g2]) peer.close();
    expect((await stop(p)).code).toBe(0);
    const rows = async (org: string) => {
      const db = await openSqlite(join(data, "bus", `${org}.db`));
      try {
        return await db.all<{ id: string; acked: number }>("SELECT id, acked FROM bus_messages ORDER BY id");
      } finally {
        await db.close();
      }
    };
    expect(await rows("acme")).toEqual([{ id: "kept", acked: 0 }]);
    expect(await rows("globex")).toEqual([]);
    // Pruning leaves the audit chain whole.
    const verified = spawnSync(
      process.execPath,
      [cli, "audit", "verify", "--db", join(data, "bus", "acme.db"), "--json"],
      {
        encoding: "utf8",
      },
    );
    expect(JSON.parse(verified.stdout)).toMatchObject({ intact: true });
  });

  it("runs on S3 (s3rver): multipart upload and tenant state survive a restart", async () => {
    const s3 = await startProxiedS3rver({ bucket: "e2e" });
    // s3rver lacks ListParts and conditional writes (If-Match / If-None-Match, used by the tenant
    // CAS checkpoints); the objects helper's test proxy answers those in front of it, as S3 does.
    try {
      const objects = `s3://e2e?endpoint=${encodeURIComponent(s3.proxy.endpoint)}&region=us-east-1&forcePathStyle=true&accessKeyId=S3RVER&secretAccessKey=S3RVER&partSize=${5 * MiB}`;
      const data1 = join(root, "s3-1");
      writeTokens(data1);
      const p = await serve(["--data", data1, "--objects", objects]);
      await fetch(`${p.url}/v1/state/cfg/region`, { method: "PUT", headers: bearer(token.globex), body: "eu" });
      const file = Buffer.alloc(12 * MiB);
      for (let i = 0; i < file.length; i += 4096) file[i] = i % 251;
      const init = (await (
        await fetch(`${p.url}/v1/uploads`, {
          method: "POST",
          headers: { ...bearer(token.globex), "content-type": "application/json" },
          body: JSON.stringify({ filename: "big.bin", size: file.length }),
        })
      ).json()) as { claimId: string; partSize: number; partCount: number };
      expect(init.partCount).toBe(3);
      for (let n = 1; n <= init.partCount; n++) {
        const body = file.subarray((n - 1) * init.partSize, n * init.partSize);
        const res = await fetch(`${p.url}/v1/uploads/${init.claimId}/parts/${n}`, {
          method: "PUT",
          headers: bearer(token.globex),
          body,
        });
        expect(res.status).toBe(200);
      }
      const done = (await (
        await fetch(`${p.url}/v1/uploads/${init.claimId}/complete`, { method: "POST", headers: bearer(token.globex) })
      ).json()) as { url: string; size: number };
      expect(done, JSON.stringify(done)).toMatchObject({ size: file.length });
      expect((await stop(p)).code).toBe(0);

      const data2 = join(root, "s3-2");
      writeTokens(data2);
      const q = await serve(["--data", data2, "--objects", objects, "--database", join(data1, "control.db")]);
      expect(await (await fetch(`${q.url}/v1/state/cfg/region`, { headers: bearer(token.globex) })).text()).toBe("eu");
      const got = await fetch(`${q.url}${done.url}`, { headers: bearer(token.globex) });
      expect(Buffer.from(await got.arrayBuffer()).equals(file)).toBe(true);
      expect((await stop(q)).code).toBe(0);
    } finally {
      await s3.stop();
    }
  });

  it("in gateway mode trusts identity headers only with the secret and validates tenant ids", async () => {
    const secret = "gateway-secret-".padEnd(40, "g");
    const p = await serve(["--data", join(root, "gw"), "--auth", "gateway", "--gateway-secret", secret]);
    const gw = (org: string, user?: string) => ({
      "x-storeroom-gateway-secret": secret,
      "x-org-id": org,
      ...(user ? { "x-user-id": user } : {}),
    });
    expect(
      (await fetch(`${p.url}/v1/state/g/k`, { method: "PUT", headers: { "x-org-id": "acme" }, body: "forged" })).status,
    ).toBe(401);
    expect(
      (await fetch(`${p.url}/v1/state/g/k`, { method: "PUT", headers: gw("acme", "ada"), body: "ok" })).status,
    ).toBe(204);
    for (const org of ["../etc", "ACME", "a b", "a.b"]) {
      const res = await fetch(`${p.url}/v1/state/g/k`, { method: "PUT", headers: gw(org), body: "x" });
      expect(res.status, org).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
    }
    expect(await (await fetch(`${p.url}/v1/state/g/k`, { headers: gw("acme", "ada") })).text()).toBe("ok");
    expect((await fetch(`${p.url}/v1/state/g/k`, { headers: gw("acme") })).status).toBe(404);
    expect((await stop(p)).code).toBe(0);
  });
});
