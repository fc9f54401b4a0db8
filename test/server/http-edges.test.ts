import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

/** Writes raw bytes and resolves with the raw response text once the server closes the socket. */
function raw(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = "";
    socket.on("data", (c) => {
      text += c.toString("latin1");
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(text));
    socket.write(bytes);
  });
}

const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("names and Fastify's own errors through a real server", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "edges"));
  const base = await server.listen();
  const url = (group: string, key: string) =>
    `${base}/v1/state/${encodeURIComponent(group)}/${encodeURIComponent(key)}`;

  it("stores and reads 101- and 512-byte names (ASCII and multi-byte)", async () => {
    for (const [group, key] of [
      ["g".repeat(101), "k".repeat(101)],
      ["g".repeat(512), "é".repeat(256)],
    ] as const) {
      expect(Buffer.byteLength(key)).toBeGreaterThanOrEqual(101);
      const put = await fetch(url(group, key), { method: "PUT", headers: auth(tokens.acme), body: "v" });
      expect(put.status, `${group.length}/${key.length}`).toBe(204);
      expect(await (await fetch(url(group, key), { headers: auth(tokens.acme) })).text()).toBe("v");
    }
  });

  it("answers names over 512 bytes with 400 INVALID_KEY and very long paths with 414, in the error shape", async () => {
    const over = await fetch(url("g", "k".repeat(513)), { method: "PUT", headers: auth(tokens.acme), body: "v" });
    expect(over.status).toBe(400);
    expect(await errorCode(over)).toBe("INVALID_KEY");
    const huge = await fetch(url("g", "k".repeat(3000)), { headers: auth(tokens.acme) });
    expect(huge.status).toBe(414);
    expect(await huge.json()).toEqual({ error: { code: "URI_TOO_LONG", message: expect.any(String) } });
  });

  it("answers a bad URL, a malformed request and oversized headers in the error shape", async () => {
    const bad = await fetch(`${base}/v1/state/%zz/k`, { headers: auth(tokens.acme) });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("INVALID_ARGUMENT");
    const malformed = await raw(base, "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    expect(malformed).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(malformed.slice(malformed.indexOf("\r\n\r\n") + 4))).toEqual({
      error: { code: "INVALID_ARGUMENT", message: "malformed HTTP request" },
    });
    const oversized = await raw(base, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(oversized).toMatch(/^HTTP\/1\.1 431 /);
    expect(oversized).toContain('"code":"TOO_LARGE"');
    const json = await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: { ...auth(tokens.acme), "content-type": "application/json" },
      body: "{not json",
    });
    expect(json.status).toBe(400);
    expect(await errorCode(json)).toBe("INVALID_ARGUMENT");
  });
});

describe("shutdown with keep-alive clients", async () => {
  const dir = useTempDir();
  const server = await startServer(join(dir, "drain"));
  const base = await server.listen();

  function get(agent: Agent, path: string): Promise<{ status: number; connection?: string; body: string }> {
    const { hostname, port } = new URL(base);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: hostname, port, path, agent, headers: auth(tokens.acme) }, (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("answers a request on an existing keep-alive socket during shutdown with 503 and Connection: close", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await get(agent, "/v1/whoami");
    expect(first.status).toBe(200);
    expect(first.connection).toBe("keep-alive");
    const closing = server.close();
    const second = await get(agent, "/v1/whoami");
    expect(second.status).toBe(503);
    expect(second.connection).toBe("close");
    expect(JSON.parse(second.body)).toEqual({ error: { code: "CLOSED", message: "the server is shutting down" } });
    expect((await closing).flushed).toBe(true);
    agent.destroy();
  });
});
