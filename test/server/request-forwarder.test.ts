import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RequestForwarder } from "../../src/server/request-forwarder.js";

/**
 * An owner that answers the first request of each connection with 204 and keeps it alive, then
 * cuts the connection when a second request arrives on it, unread: what a node that closes its
 * idle keep-alive connections at the end of its shutdown does to a request sent at that moment.
 */
function cuttingOwner(): Promise<{ server: NetServer; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createNetServer((socket: Socket) => {
    let answered = false;
    let buffer = "";
    socket.on("data", (chunk) => {
      buffer += chunk.toString("latin1");
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buffer.slice(0, end);
      if (answered) {
        socket.resetAndDestroy();
        return;
      }
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      requests.push(`${head.split(" ")[0]} ${buffer.slice(end + 4, end + 4 + length)}`);
      buffer = "";
      answered = true;
      socket.write("HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n\r\n");
    });
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${port}`, requests });
    }),
  );
}

/** A front node that forwards every request to `owner` and answers 299 when the forwarder reports it unreachable. */
function front(forwarder: RequestForwarder, owner: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void forwarder
      .proxy(req, res, owner, null, 0, () => undefined)
      .then((outcome) => {
        if (outcome === "unreachable") {
          req.resume();
          res.writeHead(299).end("unreachable");
        }
      });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port })),
  );
}

function send(port: number, method: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path: "/v1/state/g/k", headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(method === "GET" || method === "DELETE" ? undefined : "value");
  });
}

describe("RequestForwarder on a reused connection the owner cuts", () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  async function setup() {
    const owner = await cuttingOwner();
    const forwarder = new RequestForwarder({ secret: "s".repeat(32), now: () => Date.now(), answerTimeoutMs: 10_000 });
    const node = await front(forwarder, owner.url);
    closers.push(
      () => owner.server.close(),
      () => node.server.close(),
      () => forwarder.close(),
    );
    // The first request opens the connection the next one reuses.
    expect(await send(node.port, "PUT")).toBe(204);
    return { owner, node };
  }

  it.each(["PUT", "DELETE", "GET"])(
    "reports %s without conditions unreachable, so it is sent again",
    async (method) => {
      const { owner, node } = await setup();
      expect(await send(node.port, method)).toBe(299);
      expect(owner.requests).toEqual(["PUT value"]);
    },
  );

  it.each([
    ["POST", {}],
    ["PATCH", {}],
    ["PUT", { "if-match": '"v1"' }],
    ["PUT", { "if-none-match": "*" }],
    ["DELETE", { "if-match": '"v1"' }],
  ] as const)("answers %s %o 502: its outcome is unknown and a repeat could differ", async (method, headers) => {
    const { node } = await setup();
    expect(await send(node.port, method, headers)).toBe(502);
  });
});
