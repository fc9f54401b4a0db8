import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { corkUntilNextTick } from "../../src/bus/cork-until-next-tick.js";
import { eventually } from "./bus-fixtures.js";

describe("corkUntilNextTick", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** A client socket to a server that records every message it gets, in order. */
  async function pair() {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const got: string[] = [];
    wss.on("connection", (ws) => ws.on("message", (data) => got.push((data as Buffer).toString())));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await new Promise((r) => ws.once("open", r));
    cleanup.push(async () => {
      ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return { ws, got, socket: (ws as unknown as { _socket: Duplex })._socket };
  }

  it("holds a few frames until the tick ends, then they leave in order", async () => {
    const { ws, got, socket } = await pair();
    for (let i = 0; i < 10; i++) {
      corkUntilNextTick(ws);
      ws.send(`small ${i}`);
    }
    expect(socket.writableCorked).toBe(1);
    expect(socket.writableLength).toBeGreaterThan(0);
    await eventually(() => got.length === 10);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `small ${i}`));
    expect(socket.writableCorked).toBe(0);
  });

  it("frames written from an event handler and from the microtasks it releases leave together", async () => {
    const { ws, got, socket } = await pair();
    const corkedInMicrotask = await new Promise<number>((resolve) => {
      setImmediate(() => {
        corkUntilNextTick(ws);
        ws.send("from the handler");
        void Promise.resolve().then(() => {
          resolve(socket.writableCorked);
          corkUntilNextTick(ws);
          ws.send("from a microtask");
        });
      });
    });
    expect(corkedInMicrotask).toBe(1);
    await eventually(() => got.length === 2);
    expect(got).toEqual(["from the handler", "from a microtask"]);
  });

  it("lets a long run of frames out in pieces while the tick goes on, never more than about 64 KiB held, in order", async () => {
    const { ws, got, socket } = await pair();
    const pad = "x".repeat(1000);
    let held = 0;
    for (let i = 0; i < 150; i++) {
      corkUntilNextTick(ws);
      held = Math.max(held, socket.writableLength);
      ws.send(`${i} ${pad}`);
    }
    // Still inside the tick: most of the 150 KB were handed to the socket already.
    expect(held).toBeLessThan(70 * 1024);
    expect(socket.writableCorked).toBe(1);
    await eventually(() => got.length === 150);
    expect(got.map((m) => Number(m.split(" ")[0]))).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(socket.writableCorked).toBe(0);
  });
});
