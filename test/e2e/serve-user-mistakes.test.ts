import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BusClient } from "../../src/bus/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { type ServeProcess, startServe } from "./serve-process.js";

// The mistakes a new user makes against `storeroom serve` on its embedded defaults, each
// answered with a clear, typed error that changes nothing.

const cli = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const root = useTempDir("storeroom-mistakes-");
const data = join(root, "data");
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `storeroom tokens add ... --json` against the server's data directory: the new token. */
function addToken(args: string[]): string {
  const added = run(["tokens", "add", "--data", data, "--json", ...args]);
  expect(added.code, added.stderr).toBe(0);
  return (JSON.parse(added.stdout) as { token: string }).token;
}

/** One raw HTTP exchange, for what `fetch` hides (the reason phrase of the status line). */
function rawRequest(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: Buffer },
): Promise<{ status: number; reason: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method, headers: init.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? "", body }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

let server: ServeProcess;
let operator: string;

beforeAll(async () => {
  server = await startServe(["--data", data]);
  operator = server.listening.generatedToken as string;
});
afterAll(async () => {
  const { code } = await server.stop("SIGTERM");
  expect(code).toBe(0);
});

describe("storeroom serve: a new user's mistakes", () => {
  it("tokens add with a malformed or reserved org names the org, never a tokens file, and writes nothing", () => {
    const tokensFile = join(data, "tokens.json");
    const before = readFileSync(tokensFile, "utf8");
    const bad = run(["tokens", "add", "--data", data, "--org", "Acme"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('storeroom: tenant orgId "Acme" may only contain [a-z0-9_-]');
    expect(bad.stderr).not.toContain("tokens file");
    const reserved = run(["tokens", "add", "--data", data, "--org", "pub"]);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain('storeroom: org id "pub" is reserved');
    expect(reserved.stderr).not.toContain("tokens file");
    expect(readFileSync(tokensFile, "utf8")).toBe(before);
  });

  it("POST /v1/tokens with a malformed user id is 400 INVALID_KEY, as every bad tenant id is", async () => {
    const res = await fetch(`${server.url}/v1/tokens`, {
      method: "POST",
      headers: { ...bearer(operator), "content-type": "application/json" },
      body: JSON.stringify({ userId: "Ada" }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INVALID_KEY");
    expect(body.error.message).toBe('tenant userId "Ada" may only contain [a-z0-9_-]');
    const listed = (await (await fetch(`${server.url}/v1/tokens`, { headers: bearer(operator) })).json()) as {
      tokens: { userId?: string }[];
    };
    expect(listed.tokens.some((t) => t.userId === "Ada")).toBe(false);
  });

  it("?tenant= naming a reserved org is 400 INVALID_KEY for every caller, not 403 for some", async () => {
    const admin = addToken(["--org", "acme", "--role", "admin"]);
    const plain = addToken(["--org", "acme", "--user", "ada"]);
    for (const token of [operator, admin, plain]) {
      for (const tenant of ["pub/org", "priv/users/ada", "quarantine/org"]) {
        const res = await fetch(`${server.url}/v1/state/config/colour?tenant=${tenant}`, { headers: bearer(token) });
        expect(res.status, `${tenant}`).toBe(400);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("INVALID_KEY");
      }
    }
    // Another org that is not reserved stays a matter of rights.
    const other = await fetch(`${server.url}/v1/state/config/colour?tenant=other/org`, { headers: bearer(admin) });
    expect(other.status).toBe(403);
  });

  it("a tus Upload-Checksum that does not match answers 460 Checksum Mismatch and keeps nothing", async () => {
    const tus = { ...bearer(operator), "tus-resumable": "1.0.0" };
    const created = await fetch(`${server.url}/v1/tus/`, {
      method: "POST",
      headers: { ...tus, "upload-length": "3" },
    });
    expect(created.status).toBe(201);
    const location = new URL(created.headers.get("location") as string, server.url).toString();
    const wrong = createHash("sha1").update("xyz").digest("base64");
    const res = await rawRequest(location, {
      method: "PATCH",
      headers: {
        ...tus,
        "content-type": "application/offset+octet-stream",
        "upload-offset": "0",
        "upload-checksum": `sha1 ${wrong}`,
      },
      body: Buffer.from("abc"),
    });
    expect(res.status).toBe(460);
    expect(res.reason).toBe("Checksum Mismatch");
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe("CHECKSUM_MISMATCH");
    const head = await fetch(location, { method: "HEAD", headers: tus });
    expect(head.headers.get("upload-offset")).toBe("0");
  });

  it("a state batch body may be as large as a value (1 MiB), not the 64 KiB of other JSON bodies", async () => {
    const post = (body: string) =>
      fetch(`${server.url}/v1/state/batch`, {
        method: "POST",
        headers: { ...bearer(operator), "content-type": "application/json" },
        body,
      });
    const large = "a".repeat(100 * 1024);
    const ok = await post(JSON.stringify({ ops: [{ op: "set", key: "large", value: large }] }));
    expect(ok.status).toBe(200);
    const read = await fetch(`${server.url}/v1/state/batch/large`, { headers: bearer(operator) });
    expect(await read.text()).toBe(large);
    const tooLarge = await post(JSON.stringify({ ops: [{ op: "set", key: "huge", value: "a".repeat(1024 * 1024) }] }));
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { error: { code: string } }).error.code).toBe("TOO_LARGE");
    const absent = await fetch(`${server.url}/v1/state/batch/huge`, { headers: bearer(operator) });
    expect(absent.status).toBe(404);
  });

  it("a BusClient reaches /v1/bus with the token in headers and the secret of <data>/bus-hmac.key", async () => {
    const url = `${server.url.replace(/^http/, "ws")}/v1/bus`;
    const refused = await rawRequest(`${server.url}/v1/bus`, {
      method: "GET",
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    expect(refused.status).toBe(401);
    expect((JSON.parse(refused.body) as { error: { code: string } }).error.code).toBe("UNAUTHENTICATED");
    const hmacSecret = readFileSync(join(data, "bus-hmac.key"), "utf8").trim();
    const received: unknown[] = [];
    const peer = (name: string) =>
      new BusClient({
        url,
        name,
        token: name,
        hmacSecret,
        headers: bearer(operator),
        onMessage: (m) => {
          received.push(m.body);
        },
      });
    const bob = peer("bob");
    const alice = peer("alice");
    try {
      await bob.connect();
      await alice.connect();
      await alice.send("bob", { text: "hello" });
      await vi.waitFor(() => expect(received).toEqual([{ text: "hello" }]), { timeout: 5000 });
    } finally {
      await alice.close();
      await bob.close();
    }
  });
});
