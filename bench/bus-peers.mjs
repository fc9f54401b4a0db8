// Peers of bench/bus.bench.ts in processes of their own, as real peers run: the broker's process
// then does only the broker's work. Argument: one JSON object
// { kind: "storeroom" | "relay", role: "receiver" | "sender" | "both", url, shape, total, senders, secret }.
// Prints "READY" once connected, "START" just before the first send, and "DONE <latencies>" once
// the receiver has every message and (relay) every ack is back at its sender. Closes when its
// stdin ends.
import WebSocket from "ws";
import { BusClient } from "../dist/bus/index.js";

const { kind, role, url, shape, total, senders: senderCount, secret } = JSON.parse(process.argv[2]);
const PAD = "x".repeat(200 - JSON.stringify({ t: 1234567.891, pad: "" }).length);
// Absolute milliseconds, so a receiver can time what another process sent.
const now = () => performance.timeOrigin + performance.now();
const body = () => ({ t: now(), pad: PAD });
const latencies = [];
let received = 0;
let acked = 0;
let wake = () => {};
const until = (check) =>
  new Promise((resolve) => {
    wake = () => {
      if (check()) resolve();
    };
    wake();
  });
const got = (t) => {
  latencies.push(now() - t);
  received++;
  wake();
};
const open = (name) =>
  new Promise((resolve) => {
    const ws = new WebSocket(`${url}/${name}`);
    ws.once("open", () => resolve(ws));
  });
const client = (name, onMessage) => new BusClient({ url, name, token: "t", hmacSecret: secret, onMessage });

const peers = [];
const receiving = role !== "sender";
const sending = role !== "receiver";
if (receiving) {
  if (kind === "storeroom") {
    const bob = client("bob", (m) => got(m.body.t));
    await bob.connect();
    peers.push(bob);
  } else {
    // The relay hands bob "<sender>\n<payload>"; bob's "<sender>\nack" goes back to the sender.
    const bob = await open("bob");
    bob.on("message", (data) => {
      const text = data.toString();
      const nl = text.indexOf("\n");
      got(JSON.parse(text.slice(nl + 1)).t);
      bob.send(`${text.slice(0, nl)}\nack`);
    });
    peers.push(bob);
  }
}
let send = () => {};
if (sending) {
  if (kind === "storeroom") {
    const clients = Array.from({ length: senderCount }, (_, i) => client(`s${i}`, () => {}));
    await Promise.all(clients.map((c) => c.connect()));
    send = (i) => void clients[i % senderCount].send("bob", body());
    peers.push(...clients);
  } else {
    const sockets = await Promise.all(Array.from({ length: senderCount }, (_, i) => open(`s${i}`)));
    for (const s of sockets) {
      s.on("message", () => {
        acked++;
        wake();
      });
    }
    send = (i) => sockets[i % senderCount].send(JSON.stringify(body()));
    peers.push(...sockets);
  }
}
process.stdout.write("READY\n");
if (sending) {
  process.stdout.write("START\n");
  for (let i = 0; i < total; i++) {
    send(i);
    // One at a time: the next message goes once the previous one arrived.
    if (shape === "serial") await until(() => received >= i + 1);
  }
}
await until(() => (!receiving || received >= total) && (!sending || kind !== "relay" || acked >= total));
process.stdout.write(`DONE ${JSON.stringify(receiving ? latencies : [])}\n`);
await new Promise((resolve) => {
  process.stdin.on("end", resolve);
  process.stdin.resume();
});
await Promise.all(peers.map((p) => p.close()));
