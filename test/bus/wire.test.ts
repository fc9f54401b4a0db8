import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalEnvelope,
  decodedCanonical,
  type Envelope,
  encodeEnvelope,
  parseEnvelope,
} from "../../src/bus/wire/envelope.js";
import { envelopeHmac, signEnvelope, verifyEnvelope } from "../../src/bus/wire/envelope-hmac.js";
import { type DecodedBody, parseFastFrame } from "../../src/bus/wire/fast-frame.js";
import {
  encodeDeliver,
  encodeFrame,
  parseFrame,
  parseFrameScanned,
  peekDeliveryKey,
} from "../../src/bus/wire/frames.js";
import { compactGoJson, goJsonString, MAX_JSON_DEPTH, scanJson } from "../../src/bus/wire/go-json.js";
import { decodeWireText, replaceRawBytes, wireBytes } from "../../src/bus/wire/wire-text.js";

const SECRET = "0123456789abcdef0123456789abcdef";

// The envelope as a Go or hand-written client might put it on the wire: whitespace in body,
// raw <, >, &, U+2028, U+2029, a \t escape and a \u0041 escape.
const WIRE =
  '{"protocol_version":"v1","id":"m<1>&","from":"alice","to":"bob","ts":"2026-05-18T12:00:00Z",' +
  '"source":"peer\\tbus \\u0041","kind":"msg",' +
  '"body": { "text" : "a<b>&c\u2028d\u2029 \\u0041", "n": [ 1, 2.5e3 ], "e": { } },"hmac":""}';

// Written by hand from Go's rules (encoding/json HTML-safe escapes, RawMessage compaction),
// not by our encoder; its HMAC was computed with Python's hmac module.
const CANONICAL =
  '{"protocol_version":"v1","id":"m\\u003c1\\u003e\\u0026","from":"alice","to":"bob","ts":"2026-05-18T12:00:00Z",' +
  '"source":"peer\\tbus A","kind":"msg",' +
  '"body":{"text":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029 \\u0041","n":[1,2.5e3],"e":{}}}';
const CANONICAL_HMAC = "1dea3121a4d88f54c8c1447f31a7231f69232ef9872827c9940fc5a11fad87bd";

describe("wire protocol v1", () => {
  it("canonical bytes and HMAC match the independent test vector", () => {
    const env = parseEnvelope(WIRE);
    expect(env.id).toBe("m<1>&");
    expect(env.source).toBe("peer\tbus A");
    expect(canonicalEnvelope(env)).toBe(CANONICAL);
    expect(envelopeHmac(env, SECRET)).toBe(CANONICAL_HMAC);
    const signed = { ...env, hmac: CANONICAL_HMAC };
    expect(verifyEnvelope(signed, SECRET)).toBe(true);
    expect(verifyEnvelope({ ...signed, hmac: CANONICAL_HMAC.toUpperCase() }, SECRET)).toBe(true);
  });

  it("verification fails on any change, a short or non-hex MAC, and refuses short secrets", () => {
    const env = signEnvelope(parseEnvelope(WIRE), SECRET);
    for (const field of ["id", "from", "to", "ts", "source"] as const) {
      expect(verifyEnvelope({ ...env, [field]: `${env[field]}x` }, SECRET)).toBe(false);
    }
    expect(verifyEnvelope({ ...env, body: '{"text":1}' }, SECRET)).toBe(false);
    expect(verifyEnvelope({ ...env, hmac: env.hmac.slice(2) }, SECRET)).toBe(false);
    expect(verifyEnvelope({ ...env, hmac: "zz".repeat(32) }, SECRET)).toBe(false);
    expect(verifyEnvelope(env, `${SECRET}!`)).toBe(false);
    expect(() => signEnvelope(env, "short")).toThrow(/at least 32 bytes/);
  });

  it("an encoded envelope re-parses to the same envelope and the same canonical bytes", () => {
    const env = signEnvelope(parseEnvelope(WIRE), SECRET);
    const again = parseEnvelope(encodeEnvelope(env));
    expect(again).toEqual(env);
    expect(verifyEnvelope(again, SECRET)).toBe(true);
    // Empty body canonicalizes as null.
    expect(canonicalEnvelope({ ...env, body: "" })).toContain(',"body":null}');
  });

  it("goJsonString follows encoding/json: HTML escapes, control characters, lone surrogates", () => {
    expect(goJsonString('<a href="x">&</a>')).toBe('"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"');
    expect(goJsonString("\b\f\n\r\t\u0001\u001f\u007f")).toBe('"\\b\\f\\n\\r\\t\\u0001\\u001f\u007f"');
    expect(goJsonString("\u2028\u2029")).toBe('"\\u2028\\u2029"');
    expect(goJsonString("x\ud800y")).toBe('"x\\ufffdy"');
    expect(goJsonString("\\ud800")).toBe('"\\\\ud800"');
    expect(goJsonString("😀")).toBe('"😀"');
  });

  it("property: every string round-trips through goJsonString and its output is pure Go-safe JSON", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        const out = goJsonString(s);
        expect(out).not.toMatch(/[<>&\u2028\u2029]/);
        expect(JSON.parse(out)).toBe(
          s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd"),
        );
      }),
    );
  });

  it("property: compaction is idempotent and preserves the JSON value", () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const spaced = JSON.stringify(JSON.parse(text), null, 2);
        const once = compactGoJson(spaced);
        expect(compactGoJson(once)).toBe(once);
        expect(JSON.parse(once)).toEqual(JSON.parse(text));
      }),
    );
  });

  it("rejects malformed JSON and invalid envelopes with a reason", () => {
    const bad: [string, string][] = [
      ["{", "malformed"],
      ["[]", "invalid_envelope"],
      ['{"a":01}', "malformed"],
      ['{"a":"\u0001"}', "malformed"],
      ['{"a":1} x', "malformed"],
      ['{"a":"\\x"}', "malformed"],
      [`{"a":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`, "malformed"],
      [WIRE.replace('"v1"', '"v2"'), "unsupported_version"],
      [WIRE.replace('"id":"m<1>&"', '"id":""'), "invalid_envelope"],
      [WIRE.replace('"id":"m<1>&"', '"id":7'), "invalid_envelope"],
      [WIRE.replace('"id":"m<1>&"', '"id":"a\\u0000b"'), "invalid_envelope"],
      [WIRE.replace('"kind":"msg"', '"kind":"broadcast"'), "invalid_envelope"],
      [WIRE.replace('"to":"bob"', '"to":"*"'), "invalid_envelope"],
      [WIRE.replace('"kind":"msg"', '"kind":"shout"'), "invalid_envelope"],
    ];
    for (const [text, reason] of bad) {
      let caught: unknown;
      try {
        parseEnvelope(text);
      } catch (err) {
        caught = err;
      }
      expect(caught, text.slice(0, 60)).toMatchObject({ reason, code: "INVALID_ARGUMENT" });
    }
    expect(scanJson('{"a":[1,{"b":null}], "c" : true }').members).toEqual([
      { name: "a", raw: '[1,{"b":null}]' },
      { name: "c", raw: "true" },
    ]);
  });

  it("control frames encode in Go field order and parse back", () => {
    const env = signEnvelope(parseEnvelope(WIRE), SECRET);
    expect(encodeFrame({ type: "register", token: "t", name: "alice" })).toBe(
      '{"protocol_version":"v1","type":"register","token":"t","name":"alice"}',
    );
    expect(encodeFrame({ type: "ack", id: "m1|bob" })).toBe('{"protocol_version":"v1","type":"ack","id":"m1|bob"}');
    expect(encodeFrame({ type: "peers" })).toBe('{"protocol_version":"v1","type":"peers","names":null}');
    const deliver = encodeDeliver("m1", Buffer.from(encodeEnvelope(env))).toString("utf8");
    expect(deliver).toBe(encodeFrame({ type: "deliver", deliveryKey: "m1", envelope: env }));
    const parsed = parseFrame(deliver);
    expect(parsed).toEqual({ type: "deliver", deliveryKey: "m1", envelope: env });
    expect(parseFrame('{"protocol_version":"v1","type":"peers","names":["a","b"]}')).toEqual({
      type: "peers",
      names: ["a", "b"],
    });
    expect(parseFrame(encodeEnvelope(env))).toEqual({ type: "envelope", envelope: env });
    // As peerbus: control frames after register carry no version check, an unknown type is an envelope.
    expect(parseFrame('{"protocol_version":"v0","type":"ack","id":"x"}')).toEqual({ type: "ack", id: "x" });
    expect(parseFrame('{"protocol_version":"v1","type":"launch","id":"x"}')).toMatchObject({
      type: "envelope",
      envelope: { id: "x", body: "null" },
    });
    expect(parseFrame('{"type":5,"ID":"y"}')).toMatchObject({ type: "envelope", envelope: { id: "y" } });
    expect(() => parseFrame('{"type":"ack","id":5}')).toThrow(/must be a string/);
    const e: Envelope = env;
    expect(parseFrame(encodeFrame({ type: "error", code: "bad_hmac", message: "no", id: e.id }))).toEqual({
      type: "error",
      code: "bad_hmac",
      message: "no",
      id: e.id,
    });
  });

  it("decodes as Go's encoding/json: any case, last duplicate wins, null and missing members, deep nesting", () => {
    const env = parseEnvelope(
      '{"PROTOCOL_VERSION":"v1","Id":"x","id":"m1","from":"a","\u017ftring":1,"\u212aIND":"msg","to":null,"to":"b","TO":null,"hmac":"h"}',
    );
    expect(env).toEqual({
      protocol_version: "v1",
      id: "m1",
      from: "a",
      to: "b",
      ts: "",
      source: "",
      kind: "msg",
      body: "null",
      hmac: "h",
    });
    // U+017F folds to S and U+212A to K, as in Go; other look-alikes do not match.
    expect(parseEnvelope(WIRE.replace('"source"', '"\u017fource"')).source).toBe("peer\tbus A");
    expect(parseEnvelope(WIRE.replace('"source"', '"sourc\u0435"')).source).toBe("");
    const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
    expect(
      parseEnvelope(WIRE.replace(/"body":[\s\S]*,"hmac"/, `"body":${deep(MAX_JSON_DEPTH - 1)},"hmac"`)).body,
    ).toHaveLength(2 * (MAX_JSON_DEPTH - 1));
    expect(() => parseEnvelope(WIRE.replace(/"body":[\s\S]*,"hmac"/, `"body":${deep(MAX_JSON_DEPTH)},"hmac"`))).toThrow(
      /nesting deeper than 10000/,
    );
  });

  it("a deliver frame too deep to decode still yields its delivery key; repeated envelope members merge", () => {
    const env = signEnvelope(parseEnvelope(WIRE), SECRET);
    const deep = `${"[".repeat(MAX_JSON_DEPTH - 1)}${"]".repeat(MAX_JSON_DEPTH - 1)}`;
    const frame = encodeFrame({ type: "deliver", deliveryKey: "k1", envelope: { ...env, body: deep } });
    expect(() => parseFrame(frame)).toThrow(/nesting/);
    expect(peekDeliveryKey(frame)).toBe("k1");
    expect(peekDeliveryKey("{nope")).toBeUndefined();
    const merged = parseFrame(
      '{"type":"deliver","delivery_key":"k","envelope":{"id":"m","from":"a"},"Envelope":{"id":"n","to":"b"}}',
    );
    expect(merged).toMatchObject({ type: "deliver", deliveryKey: "k", envelope: { id: "n", from: "a", to: "b" } });
  });

  it("property: any bytes survive decodeWireText -> wireBytes exactly", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const { text, lossless } = decodeWireText(bytes);
        expect(wireBytes(text)).toEqual(Buffer.from(bytes));
        expect(lossless).toBe(Buffer.from(text, "utf8").equals(Buffer.from(bytes)));
      }),
    );
  });

  it("bytes that are not UTF-8 become one U+FFFD each, as Go's decoder makes them (not one per WHATWG subpart)", () => {
    const decode = (bytes: number[]) => replaceRawBytes(decodeWireText(Uint8Array.from(bytes)).text);
    expect(decode([0xe2, 0x82, 0x41])).toBe("\ufffd\ufffdA");
    expect(new TextDecoder().decode(Uint8Array.from([0xe2, 0x82, 0x41]))).toBe("\ufffdA");
    expect(decode([0xed, 0xa0, 0x80])).toBe("\ufffd\ufffd\ufffd"); // an encoded surrogate
    expect(decode([0xc0, 0xaf])).toBe("\ufffd\ufffd"); // overlong
    expect(decode([0xf4, 0x90, 0x80, 0x80])).toBe("\ufffd\ufffd\ufffd\ufffd"); // above U+10FFFF
    expect(decode([0xf0, 0x90, 0x82, 0x80, 0xff])).toBe("\u{10080}\ufffd");
    // A field decodes that way; the body keeps the raw bytes, so signatures over them still verify.
    const wire = Buffer.concat([
      Buffer.from('{"protocol_version":"v1","id":"i","from":"a\\ud800'),
      Buffer.from([0x80]),
      Buffer.from('","to":"b","ts":"","source":"","kind":"msg","body":{"s":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"},"hmac":""}'),
    ]);
    const env = parseEnvelope(decodeWireText(wire).text);
    expect(env.from).toBe("a\ufffd\ufffd");
    const signed = signEnvelope({ ...env, from: "a" }, SECRET);
    expect(verifyEnvelope(signed, SECRET)).toBe(true);
    expect(wireBytes(encodeEnvelope(signed)).includes(Buffer.from([0xff, 0xfe]))).toBe(true);
    expect(JSON.parse(replaceRawBytes(signed.body))).toEqual({ s: "\ufffd\ufffd" });
  });

  it("signing refuses what no receiver could verify: a lone surrogate in a field, a body that is not JSON", () => {
    const env = parseEnvelope(WIRE);
    expect(() => signEnvelope({ ...env, from: "a\ud800" }, SECRET)).toThrow(/lone surrogate/);
    expect(() => signEnvelope({ ...env, body: '{"a":}' }, SECRET)).toThrow(/malformed JSON/);
    expect(() => signEnvelope({ ...env, body: "1 2" }, SECRET)).toThrow(/trailing/);
  });
});

describe("fast frame path", () => {
  const key = fc.constantFrom(
    "protocol_version",
    "id",
    "from",
    "to",
    "ts",
    "source",
    "kind",
    "hmac",
    "body",
    "type",
    "delivery_key",
    "envelope",
    "ID",
    "Body",
    "extra",
    "b\\u006fdy",
    "\\u0069d",
  );
  const scalar = fc.oneof(
    fc.string({ unit: "binary", maxLength: 6 }).map((s) => JSON.stringify(s)),
    fc.constantFrom("null", "true", "1", "-0.5e3", '"v1"', '"msg"', '"ack"', '"deliver"', '"\\ud800"', '"\\b"'),
    fc.json({ maxDepth: 2 }).map((j) => JSON.stringify(JSON.parse(j), null, 1)),
  );
  const object = (inner: fc.Arbitrary<string>) =>
    fc
      .array(fc.tuple(key, fc.oneof(inner, inner, scalar)), { maxLength: 9 })
      .map((ms) => `{${ms.map(([k, v]) => `"${k}" : ${v}`).join(",")}}`);
  const frame = object(object(scalar));

  it("property: the fast path decodes exactly what the scanner decodes, or leaves the frame to it", () => {
    const outcome = (f: () => unknown) => {
      try {
        return { ok: f() };
      } catch (err) {
        return { error: (err as { reason?: string }).reason };
      }
    };
    fc.assert(
      fc.property(frame, (text) => {
        expect(outcome(() => parseFrame(text))).toEqual(outcome(() => parseFrameScanned(text)));
      }),
      { numRuns: 3000 },
    );
  });

  it("property: a deliver frame's body comes decoded as JSON.parse decodes the envelope's body, and its canonical text needs no second compaction", () => {
    const field = fc.string({ unit: "binary", maxLength: 8 });
    const body = fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc.json({ maxDepth: 2 }).map((j) => JSON.stringify(JSON.parse(j), null, 2)),
      fc.constantFrom('"<a & b>\u2028"', '{"s":"\\ud800","n":1.50,"e":1E+2}', "null", '[ "x" , { } ]'),
    );
    let fast = 0;
    fc.assert(
      fc.property(field, field, body, fc.boolean(), (id, from, raw, withKey) => {
        const env = { protocol_version: "v1", id, from, to: "b", ts: "t", source: "s", kind: "msg", body: raw };
        const signed = { ...env, hmac: envelopeHmac(env, SECRET) };
        const text = encodeFrame({ type: "deliver", deliveryKey: withKey ? "k" : "", envelope: signed });
        const decoded: DecodedBody = {};
        const frame = parseFastFrame(text, decoded) ?? parseFrameScanned(text);
        if (frame.type !== "deliver") throw new Error(`not a deliver frame: ${text}`);
        expect(decodedCanonical(frame.envelope)).toBe(canonicalEnvelope(frame.envelope));
        expect(verifyEnvelope(frame.envelope, SECRET)).toBe(true);
        if ("value" in decoded) {
          fast++;
          expect(decoded.value).toEqual(JSON.parse(replaceRawBytes(frame.envelope.body)));
        }
      }),
      { numRuns: 1500 },
    );
    expect(fast).toBeGreaterThan(500);
  });

  it("takes the plain frames peers send", () => {
    const env = signEnvelope(parseEnvelope(WIRE), SECRET);
    const deliver = encodeFrame({ type: "deliver", deliveryKey: "k", envelope: env });
    for (const text of [encodeEnvelope(env), deliver, encodeFrame({ type: "ack", id: "k" })]) {
      expect(parseFastFrame(text)).toEqual(parseFrameScanned(text));
      expect(parseFastFrame(text)).toBeDefined();
    }
    // A null string member, a repeated envelope, an escaped name: left to the scanner.
    expect(parseFastFrame('{"id":"a","id":null}')).toBeUndefined();
    expect(parseFastFrame(`{"type":"deliver","envelope":{"id":"a"},"envelope":{"to":"b"}}`)).toBeUndefined();
    expect(parseFastFrame('{"\\u0069d":"a"}')).toBeUndefined();
  });
});
