import { checkBusName } from "../bus-message.js";
import { compactGoJson, goJsonString, scanJsonObject } from "./go-json.js";
import { WireError } from "./wire-error.js";

/** The only protocol version v1 accepts, exact match. */
export const PROTOCOL_VERSION = "v1";

/** The broadcast address. */
export const BROADCAST = "*";

/** Largest frame either side accepts (1 MiB), as in peerbus. */
export const MAX_FRAME_BYTES = 1 << 20;

/**
 * A peerbus v1 message envelope: exactly nine fields, none omitted. Field names are the wire
 * names. `body` is the raw JSON text of the payload, compacted as Go compacts it (`"null"`
 * when absent); it is signed and carried verbatim, never re-encoded.
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

const STRING_FIELDS = ["protocol_version", "id", "from", "to", "ts", "source", "kind", "hmac"] as const;

/**
 * The signed bytes: the eight fields other than `hmac`, in wire order, as Go's
 * `encoding/json` writes them (HTML-safe escapes included), with `body` spliced in.
 */
export function canonicalEnvelope(env: Omit<Envelope, "hmac">): string {
  return (
    `{"protocol_version":${goJsonString(env.protocol_version)},"id":${goJsonString(env.id)}` +
    `,"from":${goJsonString(env.from)},"to":${goJsonString(env.to)},"ts":${goJsonString(env.ts)}` +
    `,"source":${goJsonString(env.source)},"kind":${goJsonString(env.kind)}` +
    `,"body":${env.body === "" ? "null" : compactGoJson(env.body)}}`
  );
}

/** The envelope as one JSON object in wire order (what the broker stores and delivers). */
export function encodeEnvelope(env: Envelope): string {
  return `${canonicalEnvelope(env).slice(0, -1)},"hmac":${goJsonString(env.hmac)}}`;
}

/**
 * Parses and validates an envelope from its JSON text: all nine fields present, strings where
 * strings belong, `protocol_version` exactly `"v1"`, non-empty `id`/`from`/`to`, `kind` `msg`
 * or `broadcast`, and `to: "*"` exactly when `kind` is `broadcast`. Unknown members are
 * ignored, as Go ignores them. Throws {@link WireError}.
 */
export function parseEnvelope(text: string): Envelope {
  return envelopeFromMembers(scanJsonObject(text));
}

/** {@link parseEnvelope} over an already scanned object. */
export function envelopeFromMembers(members: Map<string, string>): Envelope {
  const fields: Record<string, string> = {};
  for (const name of STRING_FIELDS) {
    const raw = members.get(name);
    if (raw === undefined) throw new WireError("invalid_envelope", `envelope field "${name}" is missing`);
    const value: unknown = JSON.parse(raw);
    if (typeof value !== "string") throw new WireError("invalid_envelope", `envelope field "${name}" must be a string`);
    fields[name] = value;
  }
  const body = members.get("body");
  if (body === undefined) throw new WireError("invalid_envelope", 'envelope field "body" is missing');
  const env = { ...fields, body: compactGoJson(body) } as unknown as Envelope;
  checkEnvelope(env);
  return env;
}

/** Throws {@link WireError} unless `env` is a valid v1 envelope (see {@link parseEnvelope}). */
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
