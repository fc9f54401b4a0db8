import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openSqlite } from "../../src/sql/index.js";
import { DeleteQueue } from "../../src/uploads/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { TestPeer } from "./bus-peer.js";
import { auth, startServer, tokens } from "./server-fixture.js";

/** The public routes the console is built on, beyond the ones each module tests itself. */
describe("console API", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const call = (token: string, path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { ...auth(token), ...(init.headers as Record<string, string>) } });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it("acts on a tenant of the admin's own org with ?tenant=, and on no other", async () => {
    await call(tokens.ada, "/v1/state/cart/item-1", { method: "PUT", body: "2" });
    const read = await call(tokens.acmeAdmin, "/v1/state/cart/item-1?tenant=acme/users/ada");
    expect(await read.text()).toBe("2");
    // Writes land in the tenant's own database: its token reads them.
    expect(
      (await call(tokens.acmeAdmin, "/v1/state/cart/item-1?tenant=acme/users/ada", { method: "PUT", body: "3" }))
        .status,
    ).toBe(204);
    expect(await (await call(tokens.ada, "/v1/state/cart/item-1")).text()).toBe("3");
    expect(await (await call(tokens.operator, "/v1/state/cart/item-1?tenant=acme/users/ada")).text()).toBe("3");

    for (const [token, tenant] of [
      [tokens.acmeAdmin, "globex/org"],
      [tokens.ada, "acme/users/bob"],
      [tokens.acme, "acme/users/ada"],
      [tokens.globex, "acme/org"],
    ] as const) {
      const res = await call(token, `/v1/state/cart/item-1?tenant=${tenant}`);
      expect(res.status, `${tenant}`).toBe(403);
      expect(await codeOf(res)).toBe("ACCESS_DENIED");
    }
    for (const tenant of ["acme", "acme/users", "Acme/org", "pub/org", "acme/users/ada/x", ""]) {
      const res = await call(tokens.operator, `/v1/state/cart/item-1?tenant=${encodeURIComponent(tenant)}`);
      expect(res.status, tenant).toBe(400);
      expect(await codeOf(res)).toBe("INVALID_KEY");
    }
    // Refused writes changed nothing.
    await call(tokens.acmeAdmin, "/v1/state/cart/item-1?tenant=globex/org", { method: "PUT", body: "x" });
    expect((await call(tokens.globex, "/v1/state/cart/item-1")).status).toBe(404);
  });

  it("streams another tenant's changes to its admin", async () => {
    const controller = new AbortController();
    const res = await call(tokens.acmeAdmin, "/v1/state/live/events?tenant=acme/users/bob", {
      signal: controller.signal,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await call(tokens.bob, "/v1/state/live/k", { method: "PUT", body: "v" });
    let text = "";
    while (!text.includes('"key":"k"')) text += (await reader.read()).value ?? "";
    expect(text).toContain("event: set");
    controller.abort();
  });

  it("lists every file and unfinished upload of an org with owners for its admin only", async () => {
    const upload = async (token: string, name: string, body: string) => {
      const created = (await (
        await call(token, "/v1/uploads", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ filename: name, size: body.length }),
        })
      ).json()) as { claimId: string; key: string };
      await call(token, `/v1/uploads/${created.claimId}/parts/1`, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body,
      });
      return created;
    };
    const ada = await upload(tokens.ada, "ada.txt", "ada's");
    await call(tokens.ada, `/v1/uploads/${ada.claimId}/complete`, { method: "POST" });
    await upload(tokens.bob, "bob.txt", "bob's"); // left unfinished
    const globex = await upload(tokens.globex, "g.txt", "globex");
    await call(tokens.globex, `/v1/uploads/${globex.claimId}/complete`, { method: "POST" });

    const files = (await (await call(tokens.acmeAdmin, "/v1/files?org=acme")).json()) as {
      files: { owner: string; originalFilename: string }[];
    };
    expect(files.files.map((f) => [f.owner, f.originalFilename])).toEqual([["acme/users/ada", "ada.txt"]]);
    const pending = (await (await call(tokens.acmeAdmin, "/v1/uploads?org=acme")).json()) as {
      uploads: { owner: string; originalFilename: string }[];
    };
    expect(pending.uploads.map((u) => [u.owner, u.originalFilename])).toEqual([["acme/users/bob", "bob.txt"]]);
    // Without ?org= the listing stays the caller's own, without owners.
    expect(((await (await call(tokens.ada, "/v1/files")).json()) as { files: object[] }).files[0]).not.toHaveProperty(
      "owner",
    );
    expect((await call(tokens.acmeAdmin, "/v1/files?org=globex")).status).toBe(403);
    expect((await call(tokens.ada, "/v1/files?org=acme")).status).toBe(403);
    expect((await call(tokens.ada, "/v1/uploads?org=acme")).status).toBe(403);
    const all = (await (await call(tokens.operator, "/v1/files?org=globex")).json()) as { files: { owner: string }[] };
    expect(all.files.map((f) => f.owner)).toEqual(["globex/org"]);

    // The admin downloads and deletes a user's private file by acting on its tenant.
    const download = await call(tokens.acmeAdmin, `/v1/files/${ada.key}?tenant=acme/users/ada`);
    expect(await download.text()).toBe("ada's");
    expect((await call(tokens.acmeAdmin, `/v1/files/${ada.key}`)).status).toBe(403);
    expect(
      (await call(tokens.acmeAdmin, `/v1/files/${ada.key}?tenant=acme/users/ada`, { method: "DELETE" })).status,
    ).toBe(204);
    expect((await call(tokens.ada, `/v1/files/${ada.key}`)).status).toBe(403);
  });

  it("shows an org's delete queue and dead letters to its admin, with retry and drop", async () => {
    const control = await openSqlite(join(dir, "control.db"));
    try {
      const queue = new DeleteQueue({ database: control, clock: new ManualClock(Date.now()) });
      await queue.schedule(["priv/x/acme.bin"], "deleted", { owner: "acme/users/ada" });
      await queue.schedule(["priv/x/globex.bin"], "deleted", { owner: "globex/org" });
      for (const row of await queue.lease(Date.now() + 1, 10, 60_000)) {
        if (!row.key.startsWith("priv/x/")) continue;
        await queue.deadLetter(row.id, { lastError: "access denied by the store", errorClass: "access_denied" });
      }
      const view = (await (await call(tokens.acmeAdmin, "/v1/delete-queue")).json()) as {
        deadLetters: { id: string; key: string }[];
      };
      expect(view.deadLetters.map((d) => d.key)).toEqual(["priv/x/acme.bin"]);
      const everything = (await (await call(tokens.operator, "/v1/delete-queue")).json()) as {
        deadLetters: { id: string; key: string }[];
      };
      const globexDead = everything.deadLetters.find((d) => d.key === "priv/x/globex.bin")!;
      // Another org's dead letter is unknown to an admin.
      expect(
        (await call(tokens.acmeAdmin, `/v1/delete-queue/dead-letters/${globexDead.id}`, { method: "DELETE" })).status,
      ).toBe(404);
      expect((await call(tokens.acme, "/v1/delete-queue")).status).toBe(403);
      const [acmeDead] = view.deadLetters;
      const retried = await call(tokens.acmeAdmin, `/v1/delete-queue/dead-letters/${acmeDead!.id}/retry`, {
        method: "POST",
      });
      expect(((await retried.json()) as { pending: { key: string; attempts: number } }).pending).toMatchObject({
        key: "priv/x/acme.bin",
        attempts: 0,
      });
      expect(
        (await call(tokens.operator, `/v1/delete-queue/dead-letters/${globexDead.id}`, { method: "DELETE" })).status,
      ).toBe(204);
      const after = (await (await call(tokens.operator, "/v1/delete-queue")).json()) as {
        pending: { key: string }[];
        deadLetters: object[];
      };
      expect(after.deadLetters).toEqual([]);
      expect(after.pending.map((p) => p.key)).toContain("priv/x/acme.bin");
    } finally {
      await control.close();
    }
  });

  it("shows an org's bus peers, message tail and audit chain to its admin only", async () => {
    const ws = `${base.replace("http", "ws")}/v1/bus`;
    const secret = readFileSync(join(dir, "bus-hmac.key"), "utf8").trim();
    const alice = await TestPeer.connect(ws, auth(tokens.acme), "alice", secret);
    const bob = await TestPeer.connect(ws, auth(tokens.ada), "bob", secret);
    try {
      alice.send("bob", { n: 1 }, "tail-1");
      await bob.waitFor(1);
      const metrics = await (await call(tokens.acme, "/metrics")).text();
      expect(metrics).toMatch(/^storeroom_bus_peers 2$/m);
      // Acked within the default hour of duplicate detection: nothing pruned yet.
      expect(metrics).toMatch(/^storeroom_bus_acked_pruned_total 0$/m);
      const peers = (await (await call(tokens.acmeAdmin, "/v1/bus/peers")).json()) as {
        peers: { name: string; connected: boolean; backlog: number }[];
      };
      expect(peers.peers.map((p) => [p.name, p.connected, p.backlog])).toEqual([
        ["alice", true, 0],
        ["bob", true, 0],
      ]);
      const tail = (await (await call(tokens.acmeAdmin, "/v1/bus/messages?limit=5")).json()) as {
        messages: { id: string; from: string; to: string; size: number }[];
      };
      expect(tail.messages).toEqual([expect.objectContaining({ id: "tail-1", from: "alice", to: "bob" })]);
      expect(tail.messages[0]).not.toHaveProperty("envelope");
      const body = (await (await call(tokens.acmeAdmin, "/v1/bus/messages/tail-1")).json()) as {
        envelope: string;
        encoding: string;
        size: number;
      };
      expect(body.encoding).toBe("utf8");
      expect(JSON.parse(body.envelope)).toMatchObject({ id: "tail-1", body: { n: 1 } });
      expect(body.size).toBe(tail.messages[0]!.size);
      const audit = (await (await call(tokens.acmeAdmin, "/v1/bus/audit/verify", { method: "POST" })).json()) as {
        orgId: string;
        intact: boolean;
        rows: number;
      };
      expect(audit).toMatchObject({ orgId: "acme", intact: true });
      expect(audit.rows).toBeGreaterThan(0);

      expect((await call(tokens.globex, "/v1/bus/peers")).status).toBe(403);
      expect((await call(tokens.acmeAdmin, "/v1/bus/peers?org=globex")).status).toBe(403);
      expect((await call(tokens.acmeAdmin, "/v1/bus/messages/tail-1?org=globex")).status).toBe(403);
      const globexView = (await (await call(tokens.operator, "/v1/bus/messages?org=globex")).json()) as {
        messages: object[];
      };
      expect(globexView.messages).toEqual([]);
      expect((await call(tokens.operator, "/v1/bus/messages/tail-1?org=globex")).status).toBe(404);
      expect((await call(tokens.acmeAdmin, "/v1/bus/messages?limit=0")).status).toBe(400);
    } finally {
      alice.close();
      bob.close();
    }
  });

  it("reports process and Node.js metrics and open event streams in /metrics", async () => {
    const controller = new AbortController();
    const res = await call(tokens.ada, "/v1/state/cart/events", { signal: controller.signal });
    const text = await (await call(tokens.acme, "/metrics")).text();
    for (const name of [
      "process_cpu_user_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/^storeroom_sse_streams 1$/m);
    controller.abort();
    await res.body?.cancel().catch(() => undefined);
    await expect
      .poll(
        async () => (await (await call(tokens.acme, "/metrics")).text()).match(/^storeroom_sse_streams (\d+)$/m)?.[1],
        {
          timeout: 5000,
        },
      )
      .toBe("0");
  });

  it("serves the metrics history to admins, with the server-wide queues for operators only", async () => {
    await server.history.sample();
    await call(tokens.ada, "/v1/state/cart/item-1");
    await server.history.sample();
    const operator = (await (await call(tokens.operator, "/v1/metrics/history")).json()) as {
      intervalMs: number;
      samples: { requestsPerSecond: number; queues?: object; residentTenants?: number; replicationLagMs?: number }[];
    };
    expect(operator.intervalMs).toBe(10_000);
    const last = operator.samples.at(-1)!;
    expect(last.requestsPerSecond).toBeGreaterThan(0);
    expect(last.queues).toMatchObject({ delete: expect.any(Number) });
    expect(last.residentTenants).toBeGreaterThan(0);
    expect(last.replicationLagMs).toEqual(expect.any(Number));
    const admin = (await (await call(tokens.acmeAdmin, "/v1/metrics/history")).json()) as { samples: object[] };
    expect(admin.samples.length).toBeGreaterThan(0);
    for (const sample of admin.samples) expect(sample).not.toHaveProperty("queues");
    expect((await call(tokens.acme, "/v1/metrics/history")).status).toBe(403);
  });
});
