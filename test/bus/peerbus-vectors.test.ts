import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_GENESIS_HASH, AuditLog, auditChainHash } from "../../src/bus/audit-log.js";
import { brokerAuditEvent } from "../../src/bus/broker-events.js";
import { BusClose, BusCloseCode, tooBigReason } from "../../src/bus/wire/close-codes.js";
import { canonicalEnvelope, decodeEnvelope, type Envelope, encodeEnvelope } from "../../src/bus/wire/envelope.js";
import {
  canonicalBytes,
  checkEnvelopeHmac,
  envelopeHmac,
  signEnvelope,
  verifyEnvelope,
} from "../../src/bus/wire/envelope-hmac.js";
import { decodeWireText, wireBytes } from "../../src/bus/wire/wire-text.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { dbPath, RawPeer, type RunningBroker, startBroker } from "./bus-fixtures.js";

// Produced by running the Go peerbus v0.3.0 itself; see the file's "provenance" and "about".
const V = JSON.parse(readFileSync(new URL("./fixtures/peerbus-vectors.json", import.meta.url), "utf8")) as Vectors;

interface SenderVector {
  name: string;
  input: Record<string, string | null>;
  input_b64: Record<string, string | null>;
  input_strings_valid_utf8: boolean;
  body_absent: boolean;
  body_b64: string | null;
  canonical_b64?: string;
  hmac_hex?: string;
  go_sender_wire_b64?: string;
  canonical_error?: string;
  go_version_dependent?: string;
}
interface WireVector {
  name: string;
  wire_b64: string;
  canonical_b64?: string;
  hmac_hex?: string;
  decoded_fields_b64?: Record<string, string>;
  go_broker_reencoded_b64?: string;
  go_version_dependent?: string;
  unmarshal_error?: string;
}
interface AuditVectorRow {
  seq: number;
  prev_hash: string;
  hash: string;
  event_b64: string;
  ts: number;
}
interface ObservedClose {
  trigger: string;
  sent: string;
  close_code?: number;
  close_reason?: string;
}
interface Vectors {
  hmac_secret: string;
  envelopes: { sender_vectors: SenderVector[]; wire_vectors: WireVector[] };
  audit_chain: { rows: AuditVectorRow[] };
  close_codes: {
    from_source: { code: number | string | null; reason: string }[];
    observed_against_running_go_broker: ObservedClose[];
  };
}

const SECRET = V.hmac_secret;
const b64 = (s: string) => Buffer.from(s, "base64");

/**
 * Go 1.22+ writes U+0008 / U+000C in strings as `\b` / `\f`; these vectors come from Go 1.19,
 * which wrote `\u0008` / `\u000c`. We emit the newer form: rewrite the expected string fields
 * (not the body, which is spliced verbatim).
 */
function newestGo(canonical: Buffer): Buffer {
  const text = canonical.toString("utf8");
  const bodyAt = text.indexOf(',"body":');
  const head = text
    .slice(0, bodyAt)
    .replace(/\\u000([8c])|\\[\s\S]/g, (m, hex?: string) => (hex === undefined ? m : hex === "8" ? "\\b" : "\\f"));
  return Buffer.from(head + text.slice(bodyAt), "utf8");
}

function senderEnvelope(v: SenderVector): Omit<Envelope, "hmac"> {
  const field = (f: string) => {
    const raw = v.input_b64[f];
    return raw == null ? "" : decodeWireText(b64(raw)).text;
  };
  return {
    protocol_version: field("protocol_version"),
    id: field("id"),
    from: field("from"),
    to: field("to"),
    ts: field("ts"),
    source: field("source"),
    kind: field("kind"),
    body: v.body_absent || v.body_b64 === null ? "" : decodeWireText(b64(v.body_b64)).text,
  };
}

describe("golden vectors from the Go peerbus", () => {
  describe("sender: encoder and HMAC", () => {
    for (const v of V.envelopes.sender_vectors) {
      it(v.name, () => {
        const env = senderEnvelope(v);
        if (v.canonical_error !== undefined) {
          // Go's Canonical fails for a body that is not JSON; signing refuses it the same way.
          expect(() => signEnvelope(env, SECRET)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
          return;
        }
        const expected = b64(v.canonical_b64 as string);
        const wire = b64(v.go_sender_wire_b64 as string);
        if (v.go_version_dependent !== undefined) {
          expect(canonicalBytes(env)).toEqual(newestGo(expected));
          // A Go 1.19 peer's signature still verifies: we accept the older escapes of \b and \f.
          const fromGo = decodeEnvelope(decodeWireText(wire).text);
          expect(checkEnvelopeHmac(fromGo, SECRET)).toBe("valid");
          return;
        }
        expect(canonicalBytes(env)).toEqual(expected);
        expect(envelopeHmac(env, SECRET)).toBe(v.hmac_hex);
        expect(wireBytes(encodeEnvelope({ ...env, hmac: v.hmac_hex as string }))).toEqual(wire);
        const received = decodeEnvelope(decodeWireText(wire).text);
        if (v.input_strings_valid_utf8) {
          expect(received).toEqual({ ...env, body: received.body, hmac: v.hmac_hex });
          expect(signEnvelope(env, SECRET).hmac).toBe(v.hmac_hex);
          expect(verifyEnvelope(received, SECRET)).toBe(true);
        } else {
          // Go wrote each invalid byte of a field as \ufffd; every receiver decodes that to
          // U+FFFD and cannot rebuild the signed bytes. Reported as such, not as a forgery.
          expect(checkEnvelopeHmac(received, SECRET)).toBe("unverifiable");
          expect(() => signEnvelope(env, SECRET)).toThrow(/lone surrogate/);
        }
      });
    }
  });

  describe("recipient and broker: decoding, canonical bytes, re-encoding", () => {
    for (const v of V.envelopes.wire_vectors) {
      it(v.name, () => {
        const text = decodeWireText(b64(v.wire_b64)).text;
        if (v.unmarshal_error !== undefined) {
          expect(() => decodeEnvelope(text)).toThrow(expect.objectContaining({ reason: "invalid_envelope" }));
          return;
        }
        const env = decodeEnvelope(text);
        for (const [field, value] of Object.entries(v.decoded_fields_b64 ?? {})) {
          expect(wireBytes(env[field as keyof Envelope]), field).toEqual(b64(value));
        }
        const canonical = b64(v.canonical_b64 as string);
        const reencoded = b64(v.go_broker_reencoded_b64 as string);
        const signed = { ...env, hmac: v.hmac_hex as string };
        if (v.go_version_dependent !== undefined) {
          expect(canonicalBytes(env)).toEqual(newestGo(canonical));
          expect(wireBytes(encodeEnvelope(env))).toEqual(newestGo(reencoded));
          expect(checkEnvelopeHmac(signed, SECRET)).toBe("valid");
          return;
        }
        expect(canonicalBytes(env)).toEqual(canonical);
        expect(envelopeHmac(env, SECRET)).toBe(v.hmac_hex);
        expect(verifyEnvelope(signed, SECRET)).toBe(true);
        expect(wireBytes(encodeEnvelope(env))).toEqual(reencoded);
        expect(canonicalEnvelope(env)).toBe(decodeWireText(canonical).text);
      });
    }
  });

  describe("audit chain written by a running peerbus broker", () => {
    const dir = useTempDir("storeroom-vectors-");
    const rows = V.audit_chain.rows;

    it("every row hashes and links as ours does, and our event encoder writes the same bytes", () => {
      let prev = AUDIT_GENESIS_HASH;
      for (const row of rows) {
        const event = b64(row.event_b64);
        expect(row.prev_hash, `seq ${row.seq}`).toBe(prev);
        expect(auditChainHash(row.prev_hash, event), `seq ${row.seq}`).toBe(row.hash);
        const e = JSON.parse(event.toString("utf8")) as {
          event: "send" | "deliver" | "ack";
          id: string;
          from: string;
          to: string;
        };
        expect(Buffer.from(brokerAuditEvent(e.event, e.id, e.from, e.to))).toEqual(event);
        prev = row.hash;
      }
    });

    it("AuditLog.verify accepts the chain as stored, and finds a tampered event", async () => {
      const db = await openSqlite(dbPath(dir, "chain"));
      const audit = await AuditLog.open({ database: db });
      for (const row of rows) {
        await db.run("INSERT INTO bus_audit (seq, prev_hash, hash, event, ts) VALUES ($1, $2, $3, $4, $5)", [
          row.seq,
          row.prev_hash,
          row.hash,
          b64(row.event_b64),
          Math.floor(row.ts / 1e6),
        ]);
      }
      expect(await audit.verify()).toBeNull();
      await db.run("UPDATE bus_audit SET event = $1 WHERE seq = 7", [Buffer.from('{"event":"ack"}')]);
      expect(await audit.verify()).toMatchObject({ seq: 7 });
      await db.close();
    });
  });

  describe("close codes and reasons", () => {
    const dir = useTempDir("storeroom-vectors-close-");
    let b: RunningBroker;
    beforeAll(async () => {
      b = await startBroker(dbPath(dir, "close"), { tokens: ["tokA", "tokB"] });
    });
    afterAll(async () => {
      await b.stop();
    });

    const register = (fields: Record<string, unknown>) =>
      JSON.stringify({ protocol_version: "v1", type: "register", token: "tokA", name: "p", ...fields });
    /** What each observed trigger sent, where the vector describes it in words. */
    const sent: Record<string, () => string | Buffer> = {
      "missing protocol version": () => JSON.stringify({ type: "register", token: "tokA", name: "p3" }),
      "register with wrong-typed field (name: 5)": () => register({ name: 5 }),
      "binary first frame": () => Buffer.from(register({})),
      "first frame over 1 MiB (1048577 bytes)": () => " ".repeat((1 << 20) + 1),
    };

    async function closeOf(frame: string | Buffer): Promise<{ code: number; reason: string }> {
      const p = new RawPeer(b.url);
      await p.opened;
      p.ws.send(frame, { binary: Buffer.isBuffer(frame) });
      return p.closed;
    }

    it("every handshake refusal peerbus was seen to send, with the same code and reason", async () => {
      const observed = V.close_codes.observed_against_running_go_broker.filter(
        (o) => typeof o.close_code === "number" && o.trigger !== "name claimed under a different token",
      );
      expect(observed.length).toBeGreaterThanOrEqual(12);
      for (const o of observed) {
        if (o.trigger === "frame over 1 MiB after register") {
          const p = await RawPeer.register(b.url, "big", "tokA");
          p.send(" ".repeat((1 << 20) + 1));
          expect(await p.closed, o.trigger).toEqual({ code: o.close_code, reason: o.close_reason });
          continue;
        }
        const frame = sent[o.trigger]?.() ?? o.sent;
        expect(await closeOf(frame), o.trigger).toEqual({ code: o.close_code, reason: o.close_reason });
      }
    });

    it("a name live under another token: 1008 'name claimed under a different token'; same token: the old connection is dropped without a close frame", async () => {
      const o = V.close_codes.observed_against_running_go_broker.find(
        (x) => x.trigger === "name claimed under a different token",
      ) as ObservedClose;
      const holder = await RawPeer.register(b.url, "claimed", "tokA");
      expect(holder.frames[0]).toEqual({ type: "peers", names: ["claimed"] });
      expect(await closeOf(register({ token: "tokB", name: "claimed" }))).toEqual({
        code: o.close_code,
        reason: o.close_reason,
      });
      const again = await RawPeer.register(b.url, "claimed", "tokA");
      // No close frame reaches the old connection: ws reports 1006 (abnormal closure).
      expect((await holder.closed).code).toBe(1006);
      await again.close();
    });

    it("a malformed frame after register leaves the connection open (plus storeroom's error frame)", async () => {
      const p = await RawPeer.register(b.url, "afterreg", "tokA");
      p.send("{broken");
      p.send('{"protocol_version":"v1","type":"peers"}');
      await p.waitFor((f) => f.type === "peers" && f.names !== undefined && p.frames.indexOf(f) > 0);
      expect(p.frames.map((f) => f.type)).toEqual(["peers", "error", "peers"]);
      await p.close();
    });

    it("our table holds every code and reason peerbus sends", () => {
      const ours = new Map(Object.values(BusClose).map((c) => [c.reason, c.code]));
      // Not sent by storeroom: 1002 and 1000 are not observable (see the vector notes); the two
      // other 1011s are unreachable in peerbus too (a bind that cannot fail, an ack write that
      // failed means the socket is gone); takeover and ignored frames send no close frame.
      const unsent = new Set(["no handshake frame", "bye", "registry bind failed", "handshake ack failed"]);
      for (const s of V.close_codes.from_source) {
        if (typeof s.code !== "number" || unsent.has(s.reason)) continue;
        if (s.code === BusCloseCode.tooBig) expect(s.reason).toBe(tooBigReason(1 << 20));
        else expect(ours.get(s.reason), s.reason).toBe(s.code);
      }
    });

    it("a plain HTTP request gets 426", async () => {
      const res = await fetch(b.url.replace("ws:", "http:"));
      expect(res.status).toBe(426);
      await res.text();
    });

    it("shutdown closes registered peers with 1001 'server shutting down'", async () => {
      const own = await startBroker(dbPath(dir, "shutdown"), { tokens: ["tokA"] });
      const p = await RawPeer.register(own.url, "p", "tokA");
      await own.stop();
      expect(await p.closed).toEqual({ code: 1001, reason: "server shutting down" });
    });
  });
});
