import { checkBusName } from "../bus-message.js";
import { decodeGoString, GoStruct } from "./go-decode.js";
import { compactGoJson, goJsonString, type JsonMember, MAX_JSON_DEPTH, scanJson } from "./go-json.js";
import { WireError } from "./wire-error.js";

/** The only protocol version v1 accepts, exact match. */
export const PROTOCOL_VERSION = "v1";

/** The broadcast address. */
export const BROADCAST = "*";

/** Largest frame either side accepts (1 MiB), as in peerbus. */
export const MAX_FRAME_BYTES = 1 << 20;

/**
 * A peerbus v1 message envelope: nine fields, written in this order, none omitted. Field names
 * are the wire names. `body` is the raw JSON text of the payload, compacted as Go compacts a
 * `json.RawMessage` (`"null"` when absent); it is signed and carried verbatim, never
 * re-encoded. A body decoded from bytes that are not valid UTF-8 keeps each such byte as a lone
 * surrogate U+DC80-U+DCFF, so the signed bytes can be rebuilt exactly (see docs/bus.md).
 */
export interface Envelope {
  readonly protocol_version: string;
  /** Unique message id: the dedupe key. */
  readonly id: string;
  /** Sender name; the broker requires it to be the connection's registered name. */
  readonly from: string;
  /** Recipient name, or `"*"` for a broadcast. */
  readonly to: string;
  /** Sender-supplied timestamp text, e.g. RFC 3339. */
  readonly ts: string;
  /** Provenance tag, carried verbatim. */
  readonly source: string;
  /** `"msg"` (direct) or `"broadcast"` (with `to: "*"`). */
  readonly kind: string;
  /** Raw JSON payload. */
  readonly body: string;
  /** Lowercase hex HMAC-SHA256 over {@link canonicalEnvelope}. */
  readonly hmac: string;
}

const FIELDS = ["protocol_version", "id", "from", "to", "ts", "source", "kind", "body", "hmac"] as const;
type Field = (typeof FIELDS)[number];
const ENVELOPE = new GoStruct<Field>(FIELDS);

/**
 * The signed text: the eight fields other than `hmac`, in wire order, as Go's
 * `encoding/json` writes them (HTML-safe escapes included), with `body` compacted and spliced
 * in. An empty `body` is written `null`. Sign and verify its bytes ({@link canonicalBytes}).
 */
export function canonicalEnvelope(env: Omit<Envelope, "hmac">): string {
  return canonicalEnvelopeWith(env, goJsonString);
}

/** {@link canonicalEnvelope} with the string fields written by `quote` (to rebuild what other encoders signed). */
export function canonicalEnvelopeWith(env: Omit<Envelope, "hmac">, quote: (value: string) => string): string {
  return canonicalText(env, quote, env.body === "" ? "null" : compactGoJson(env.body));
}

/**
 * {@link canonicalEnvelope} of an envelope as {@link decodeEnvelope} or a parsed frame gives it:
 * its body is compact already (and never empty), so it is not scanned again.
 */
export function decodedCanonical(env: Omit<Envelope, "hmac">): string {
  return canonicalText(env, goJsonString, env.body);
}

function canonicalText(env: Omit<Envelope, "hmac">, quote: (value: string) => string, body: string): string {
  return (
    `{"protocol_version":${quote(env.protocol_version)},"id":${quote(env.id)}` +
    `,"from":${quote(env.from)},"to":${quote(env.to)},"ts":${quote(env.ts)}` +
    `,"source":${quote(env.source)},"kind":${quote(env.kind)}` +
    `,"body":${body}}`
  );
}

/** The envelope as one JSON object in wire order: what the broker stores and delivers, and Go's `json.Marshal` of it. */
export function encodeEnvelope(env: Envelope, canonical = canonicalEnvelope(env)): string {
  return `${canonical.slice(0, -1)},"hmac":${goJsonString(env.hmac)}}`;
}

/**
 * Decodes an envelope as Go's `json.Unmarshal` into peerbus's `wire.Envelope` does: member
 * names match case-insensitively, the last of duplicate members wins, unknown members are
 * ignored, a missing or `null` string field is `""`, a missing `body` is `null`, nesting up to
 * 10000 levels. Throws {@link WireError} `malformed` for invalid JSON and `invalid_envelope`
 * for a member of the wrong type. It does not check the values; see {@link checkEnvelope}.
 */
export function decodeEnvelope(text: string): Envelope {
  const scanned = scanJson(text);
  if (scanned.kind === "n") return envelopeFromMembers([]);
  if (scanned.kind !== "{") throw new WireError("invalid_envelope", "an envelope must be a JSON object");
  return envelopeFromMembers(scanned.members);
}

/** {@link decodeEnvelope} over the members of an already scanned object. */
export function envelopeFromMembers(members: readonly JsonMember[]): Envelope {
  const env: Record<Field, string> = {
    protocol_version: "",
    id: "",
    from: "",
    to: "",
    ts: "",
    source: "",
    kind: "",
    body: "null",
    hmac: "",
  };
  ENVELOPE.each(members, (field, raw) => {
    if (field === "body") env.body = compactGoJson(raw);
    else {
      const value = decodeGoString(raw, `envelope field "${field}"`, "invalid_envelope");
      if (value !== undefined) env[field] = value;
    }
  });
  return env;
}

/**
 * Parses and validates an envelope: {@link decodeEnvelope}, then {@link checkEnvelope}.
 * Throws {@link WireError}.
 */
export function parseEnvelope(text: string): Envelope {
  const env = decodeEnvelope(text);
  checkEnvelope(env);
  return env;
}

/**
 * Throws {@link WireError} unless `env` is an envelope the broker routes: `protocol_version`
 * exactly `"v1"`, non-empty `id`, `from` and `to` without U+0000 (neither engine stores it in
 * a key), `kind` `msg` or `broadcast`, and `to: "*"` exactly when `kind` is `broadcast`.
 */
export function checkEnvelope(env: Envelope): void {
  if (env.protocol_version !== PROTOCOL_VERSION) {
    throw new WireError("unsupported_version", `protocol_version must be "${PROTOCOL_VERSION}"`);
  }
  try {
    checkBusName(env.id, "id", "bus.wire");
    checkBusName(env.from, "from", "bus.wire");
    checkBusName(env.to, "to", "bus.wire");
  } catch (err) {
    throw new WireError("invalid_envelope", (err as Error).message);
  }
  if (env.kind !== "msg" && env.kind !== "broadcast") {
    throw new WireError("invalid_envelope", 'kind must be "msg" or "broadcast"');
  }
  if ((env.to === BROADCAST) !== (env.kind === "broadcast")) {
    throw new WireError("invalid_envelope", 'to "*" goes with kind "broadcast", and only with it');
  }
}

/**
 * Throws {@link WireError} `undeliverable` when the body nests so deep that the deliver frame
 * carrying the envelope would pass Go's nesting limit of 10000 (no peerbus client could decode
 * it). Cheap: only a body long enough to nest that deep is scanned again.
 */
export function checkDeliverable(env: Pick<Envelope, "body">): void {
  if (env.body.length < 2 * (MAX_JSON_DEPTH - 2)) return;
  try {
    checkBody(env.body);
  } catch (err) {
    throw new WireError("undeliverable", `the body nests too deep to be delivered: ${(err as Error).message}`);
  }
}

/**
 * Throws {@link WireError} `malformed` unless `body` is one valid JSON value (Go's
 * `json.Marshal` of a `json.RawMessage` fails otherwise) that still fits the nesting limit
 * once it sits inside an envelope inside a deliver frame.
 */
export function checkBody(body: string): void {
  if (body === "") return;
  scanJson(body, MAX_JSON_DEPTH - 2);
}
