import { connect, createServer, type Server, type Socket } from "node:net";

/** A TCP proxy that forwards to a target and cuts the connection once after N bytes. */
export interface CuttingProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Client-to-server bytes forwarded so far. */
  readonly forwarded: number;
  /** How many connections were cut. */
  readonly cuts: number;
  /** Cut the connection that carries client-to-server byte number `bytes` (counted from now), once. */
  cutAfter(bytes: number): void;
  close(): Promise<void>;
}

/**
 * Starts a loopback TCP proxy to `target` (`http://127.0.0.1:<port>`). Used to break an upload
 * half-way the way a flaky network does: both sockets are destroyed mid-request.
 */
export async function startCuttingProxy(target: string): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let forwarded = 0;
  let cuts = 0;
  let cutAt: number | undefined;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (cutAt !== undefined && forwarded + chunk.byteLength >= cutAt) {
        const keep = cutAt - forwarded;
        cutAt = undefined;
        cuts++;
        forwarded += keep;
        upstream.write(chunk.subarray(0, keep), cut);
        return;
      }
      forwarded += chunk.byteLength;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on("close", () => sockets.delete(upstream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const proxyPort = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    get forwarded() {
      return forwarded;
    },
    get cuts() {
      return cuts;
    },
    cutAfter(bytes: number) {
      cutAt = forwarded + bytes;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
