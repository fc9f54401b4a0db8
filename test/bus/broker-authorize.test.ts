import { createServer } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { Broker } from "../../src/bus/broker.js";
import { BusClose } from "../../src/bus/wire/close-codes.js";
import { encodeFrame } from "../../src/bus/wire/frames.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, RawPeer, SECRET, startBroker, TOKEN } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-authorize-");

describe("Broker authorizeRegistration", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it("hands the upgrade context to the hook and refuses names it rejects as claimed (1008), keeping the holder", async () => {
    const b = await startBroker(dbPath(dir, "a"));
    cleanup.push(() => b.stop());
    const seen: [string, unknown][] = [];
    const owners = new Map<string, string>([["alice", "user-alice"]]);
    const mounted = new Broker({
      store: b.store,
      tokens: [TOKEN],
      hmacSecret: SECRET,
      authorizeRegistration: async (name, context) => {
        seen.push([name, context]);
        return owners.get(name) === (context as { user: string }).user;
      },
    });
    cleanup.push(() => mounted.close());
    const server = createServer();
    server.on("upgrade", (req, socket, head) => {
      const user = new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? "";
      mounted.handleUpgrade(req, socket, head, { user });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = (user: string) => `ws://127.0.0.1:${(server.address() as { port: number }).port}/?user=${user}`;

    const alice = await RawPeer.register(url("user-alice"), "alice");
    cleanup.push(() => alice.close());
    const bob = new RawPeer(url("user-bob"));
    await bob.opened;
    bob.send(encodeFrame({ type: "register", token: TOKEN, name: "alice" }));
    expect(await bob.closed).toEqual(BusClose.nameClaimed);
    expect(mounted.connectedPeers()).toEqual(["alice"]);
    expect(alice.ws.readyState).toBe(alice.ws.OPEN);
    expect(seen).toEqual([
      ["alice", { user: "user-alice" }],
      ["alice", { user: "user-bob" }],
    ]);
  });
});
