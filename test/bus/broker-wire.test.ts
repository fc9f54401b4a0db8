import { createHmac } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { envelopeHmac, verifyEnvelope } from "../../src/bus/wire/envelope-hmac.js";
import { MAX_JSON_DEPTH } from "../../src/bus/wire/go-json.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, RawPeer, type RunningBroker, SECRET, startBroker } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-broker-wire-");

/** An envelope's wire bytes as a Go peer writes them, HMAC computed over exactly those bytes. */
function goEnvelope(id: string, from: string, to: string, body: Buffer | null): Buffer {
  const head = Buffer.from(
    `{"protocol_version":"v1","id":"${id}","from":"${from}","to":"${to}","ts":"t","source":"go","kind":"msg"`,
  );
  const canonical = Buffer.concat([head, Buffer.from(',"body":'), body ?? Buffer.from("null"), Buffer.from("}")]);
  const mac = createHmac("sha256", SECRET).update(canonical).digest("hex");
  const bodyPart = body === null ? [] : [Buffer.from(',"body":'), body];
  return Buffer.concat([head, ...bodyPart, Buffer.from(`,"hmac":"${mac}"}`)]);
}

describe("broker: what Go peers send", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  async function setup(): Promise<{ b: RunningBroker; bob: RawPeer; alice: RawPeer }> {
    const b = await startBroker(dbPath(dir, "w"));
    cleanup.push(() => b.stop());
    const bob = await RawPeer.register(b.url, "bob");
    const alice = await RawPeer.register(b.url, "alice");
    cleanup.push(
      () => bob.close(),
      () => alice.close(),
    );
    return { b, bob, alice };
  }

  it("relays a body holding bytes that are not UTF-8 byte for byte: stored, delivered, verified; no 1007", async () => {
    const { b, bob, alice } = await setup();
    const body = Buffer.from([...Buffer.from('{"s":"'), 0xff, 0xed, 0xa0, 0x80, ...Buffer.from('"}')]);
    alice.send(goEnvelope("raw1", "alice", "bob", body));
    const got = await bob.waitFor((f) => f.type === "deliver");
    expect(got.type === "deliver" && verifyEnvelope(got.envelope, SECRET)).toBe(true);
    expect((bob.raw[1] as Buffer).includes(body)).toBe(true);
    expect(Buffer.from((await b.store.get("raw1"))?.envelope ?? []).includes(body)).toBe(true);
    expect(alice.ws.readyState).toBe(alice.ws.OPEN);
    expect(alice.frames.filter((f) => f.type === "error")).toEqual([]);
  });

  it("a field that was not UTF-8 gets an 'unverifiable' error frame (no receiver could verify it), not silence", async () => {
    const { b, alice } = await setup();
    // What a Go sender writes for the field bytes "x\xffy": each invalid byte as \ufffd, also in what it signed.
    alice.send(goEnvelope("bad-field", "alice", "bo\\ufffdb", Buffer.from("1")));
    const err = await alice.waitFor((f) => f.type === "error");
    expect(err).toMatchObject({ code: "unverifiable", id: "bad-field" });
    expect(await b.store.get("bad-field")).toBeUndefined();
  });

  it("accepts what encoding/json accepts: no body, names in any case, repeated members (last wins)", async () => {
    const { bob, alice } = await setup();
    alice.send(goEnvelope("nobody", "alice", "bob", null));
    const mac = envelopeHmac(
      { protocol_version: "v1", id: "cased", from: "alice", to: "bob", ts: "", source: "", kind: "msg", body: "[1]" },
      SECRET,
    );
    alice.send(
      `{"PROTOCOL_VERSION":"v1","ID":"x","Id":"cased","From":"alice","TO":"carol","to":"bob","KIND":"msg","Body":[1],"HMAC":"${mac}"}`,
    );
    await bob.waitFor((f) => f.type === "deliver" && f.deliveryKey === "cased");
    expect(bob.frames.flatMap((f) => (f.type === "deliver" ? [[f.deliveryKey, f.envelope.body]] : []))).toEqual([
      ["nobody", "null"],
      ["cased", "[1]"],
    ]);
    expect(alice.frames.filter((f) => f.type === "error")).toEqual([]);
  });

  it("nesting: as deep as a deliver frame can carry is delivered; one more level is refused as undeliverable", async () => {
    const { b, bob, alice } = await setup();
    const deep = (n: number) => Buffer.from(`${"[".repeat(n)}${"]".repeat(n)}`);
    alice.send(goEnvelope("d9998", "alice", "bob", deep(MAX_JSON_DEPTH - 2)));
    alice.send(goEnvelope("d9999", "alice", "bob", deep(MAX_JSON_DEPTH - 1)));
    alice.send(goEnvelope("d10000", "alice", "bob", deep(MAX_JSON_DEPTH)));
    await bob.waitFor((f) => f.type === "deliver");
    await alice.waitFor(() => alice.frames.filter((f) => f.type === "error").length === 2);
    expect(alice.frames.flatMap((f) => (f.type === "error" ? [[f.code, f.id]] : []))).toEqual([
      ["undeliverable", "d9999"],
      ["malformed", undefined],
    ]);
    expect(bob.delivered()).toEqual(["d9998"]);
    expect(await b.store.get("d9999")).toBeUndefined();
  });
});
