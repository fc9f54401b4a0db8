// Peers of bench/bus.bench.ts in processes of their own, as real peers run: the broker's process
// then does only the broker's work. Argument: one JSON object
// { kind: "storeroom" | "relay", role: "receiver" | "sender" | "both", url, shape, total, senders, secret, warmup,
// client? }, where `client` is the URL of another build's `bus/index.js` whose BusClient the peers use.
// First `warmup` messages of the same shape go through untimed, so the timed ones run on
// compiled code as a long-running broker does: a receiver prints "WARM" once it has them all,
// and a sender then waits for a "go" line on its stdin (one process in both roles goes on by
// itself). Prints "READY" once connected, "START" just before the first timed send, and
// "DONE <latencies>" once the receiver has every timed message and (relay) every ack is back at
// its sender. Closes when its stdin ends.
import WebSocket from "ws";

const {
  kind,
  role,
  url,
  shape,
  total,
  senders: senderCount,
  secret,
  warmup = 0,
  client: clientModule,
} = JSON.parse(process.argv[2]);
const { BusClient } = await import(clientModule ?? "../dist/bus/index.js");
const PAD = "x".repeat(200 - JSON.stringify({ t: 1234567.891, pad: "" }).length);
// Absolute milliseconds, so a receiver can time what another process sent.
const now = () => performance.timeOrigin + performance.now();
const body = (warm) => ({ t: now(), pad: PAD, ...(warm ? { warm: 1 } : {}) });
const latencies = [];
let received = 0;
let acked = 0;
let warmed = 0;
let wake = () => {};
const until = (check) =>
  new Promise((resolve) => {
    wake = () => {
      if (check()) resolve();
    };
    wake();
  });
const got = ({ t, warm }) => {
  if (warm === 1) {
    if (++warmed === warmup && role === "receiver") process.stdout.write("WARM\n");
  } else {
    latencies.push(now() - t);
    received++;
  }
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
    const bob = client("bob", (m) => got(m.body));
    await bob.connect();
    peers.push(bob);
  } else {
    // The relay hands bob "<sender>\n<payload>"; bob's "<sender>\nack" goes back to the sender.
    const bob = await open("bob");
    bob.on("message", (data) => {
      const text = data.toString();
      const nl = text.indexOf("\n");
      got(JSON.parse(text.slice(nl + 1)));
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
    send = (i, warm) => void clients[i % senderCount].send("bob", body(warm));
    peers.push(...clients);
  } else {
    const sockets = await Promise.all(Array.from({ length: senderCount }, (_, i) => open(`s${i}`)));
    for (const s of sockets) {
      s.on("message", () => {
        acked++;
        wake();
      });
    }
    send = (i, warm) => sockets[i % senderCount].send(JSON.stringify(body(warm)));
    peers.push(...sockets);
  }
}
process.stdout.write("READY\n");
const go = new Promise((resolve) => {
  let input = "";
  process.stdin.on("data", (chunk) => {
    input += chunk;
    if (input.includes("go\n")) resolve();
  });
});
if (sending) {
  for (let i = 0; i < warmup; i++) {
    send(i, true);
    // One at a time: the next message goes once the previous one arrived.
    if (shape === "serial") await until(() => warmed >= i + 1);
  }
  if (receiving) await until(() => warmed >= warmup && (kind !== "relay" || acked >= warmup));
  else if (warmup > 0) await go;
  process.stdout.write("START\n");
  for (let i = 0; i < total; i++) {
    send(i, false);
    if (shape === "serial") await until(() => received >= i + 1);
  }
}
const acks = warmup + total;
await until(() => (!receiving || received >= total) && (!sending || kind !== "relay" || acked >= acks));
process.stdout.write(`DONE ${JSON.stringify(receiving ? latencies : [])}\n`);
await new Promise((resolve) => process.stdin.on("end", resolve));
await Promise.all(peers.map((p) => p.close()));
