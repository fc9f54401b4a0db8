import { type Envelope, encodeEnvelope, envelopeFromMembers, PROTOCOL_VERSION } from "./envelope.js";
import { parseFastFrame } from "./fast-frame.js";
import { decodeGoString, GoStruct } from "./go-decode.js";
import { goJsonString, type JsonMember, MAX_JSON_DEPTH, scanJson } from "./go-json.js";
import { WireError, type WireErrorReason } from "./wire-error.js";
import { replaceRawBytes } from "./wire-text.js";

/** Client -> broker, first frame: bind `name` under bearer `token`. */
export interface RegisterFrame {
  readonly type: "register";
  readonly token: string;
  readonly name: string;
  /** The frame's `protocol_version` as received (the broker refuses anything but `"v1"`); always `"v1"` when encoding. */
  readonly protocolVersion?: string;
}
/** Client -> broker: the message delivered under `id` (the delivery key) was consumed. */
export interface AckFrame {
  readonly type: "ack";
  readonly id: string;
}
/** Both ways: a request (no names) or the list of connected peers (also the register ack). */
export interface PeersFrame {
  readonly type: "peers";
  readonly names?: readonly string[];
}
/** Broker -> client: one envelope, acked by `deliveryKey` (outside the signature). */
export interface DeliverFrame {
  readonly type: "deliver";
  readonly deliveryKey: string;
  readonly envelope: Envelope;
}
/** Broker -> client (storeroom extension; peerbus only logs): why a frame was refused. */
export interface ErrorFrame {
  readonly type: "error";
  readonly code: WireErrorReason;
  readonly message: string;
  /** The envelope id the error is about, when known. */
  readonly id?: string;
}
/** A bare envelope: client -> broker, a message to send. */
export interface EnvelopeFrame {
  readonly type: "envelope";
  readonly envelope: Envelope;
}

/** Every frame of wire protocol v1. */
export type Frame = RegisterFrame | AckFrame | PeersFrame | DeliverFrame | ErrorFrame | EnvelopeFrame;

const TYPE = new GoStruct(["type"] as const);
const REGISTER = new GoStruct(["protocol_version", "type", "token", "name"] as const);
const ACK = new GoStruct(["protocol_version", "type", "id"] as const);
const PEERS = new GoStruct(["protocol_version", "type", "names"] as const);
const DELIVER = new GoStruct(["protocol_version", "type", "delivery_key", "envelope"] as const);
const ERROR = new GoStruct(["protocol_version", "type", "code", "message", "id"] as const);

/**
 * Parses one frame the way peerbus dispatches it: the `type` member (matched as Go matches
 * names) picks `register`, `ack`, `peers` or `deliver` (plus storeroom's `error`); any other
 * frame, `null` included, is an envelope, decoded as {@link decodeEnvelope} does. Values are
 * not checked here (the broker checks versions and envelopes). Throws {@link WireError}
 * `malformed` for text Go's `json.Unmarshal` would refuse.
 */
export function parseFrame(text: string): Frame {
  return parseFastFrame(text) ?? parseFrameScanned(text);
}

/** {@link parseFrame} without the fast path: the reference it must agree with. */
export function parseFrameScanned(text: string): Frame {
  const scanned = scanJson(text, MAX_JSON_DEPTH, isEnvelopeMember);
  if (scanned.kind !== "{") {
    if (scanned.kind === "n") return { type: "envelope", envelope: envelopeFromMembers([]) };
    throw new WireError("malformed", "a frame must be a JSON object");
  }
  const members = scanned.members;
  let type: string | undefined;
  try {
    TYPE.each(members, (_, raw) => {
      type = decodeGoString(raw, "type") ?? type;
    });
  } catch {
    type = undefined; // peerbus falls back to decoding an envelope.
  }
  switch (type) {
    case "register": {
      const r = decodeRegister(members);
      return { type, token: r.token, name: r.name, protocolVersion: r.protocolVersion };
    }
    case "ack": {
      let id = "";
      ACK.each(members, (f, raw) => {
        const value = str(raw, f);
        if (f === "id") id = value ?? id;
      });
      return { type, id };
    }
    case "peers": {
      let names: string[] | undefined;
      PEERS.each(members, (f, raw) => {
        if (f === "names") names = stringArray(raw);
        else str(raw, f);
      });
      return names === undefined ? { type } : { type, names };
    }
    case "deliver": {
      let deliveryKey = "";
      DELIVER.each(members, (f, raw) => {
        if (f === "envelope") {
          if (raw !== "null" && !raw.startsWith("{"))
            throw new WireError("malformed", "deliver.envelope must be an object");
        } else if (f === "delivery_key") deliveryKey = str(raw, f) ?? deliveryKey;
        else str(raw, f);
      });
      // Go decodes a repeated struct member into the same struct: fields merge, later ones win.
      return { type, deliveryKey, envelope: envelopeFromMembers(scanned.nested) };
    }
    case "error": {
      const fields: { code: string; message: string; id?: string } = { code: "", message: "" };
      ERROR.each(members, (f, raw) => {
        const value = str(raw, f);
        if (value !== undefined && (f === "code" || f === "message" || f === "id")) fields[f] = value;
      });
      return {
        type,
        code: (fields.code || "malformed") as WireErrorReason,
        message: fields.message,
        ...(fields.id === undefined ? {} : { id: fields.id }),
      };
    }
    default:
      return { type: "envelope", envelope: envelopeFromMembers(members) };
  }
}

/** A first frame as decoded, before the broker checks it is a v1 `register`. */
export interface RegisterRequest {
  readonly type: string;
  readonly token: string;
  readonly name: string;
  readonly protocolVersion: string;
}

/**
 * The first frame as peerbus decodes it into `wire.Register`: any JSON object (or `null`) with
 * string members. Throws {@link WireError} `malformed` otherwise (peerbus closes 1007 then).
 */
export function parseRegister(text: string): RegisterRequest {
  const scanned = scanJson(text);
  if (scanned.kind === "n") return { type: "", token: "", name: "", protocolVersion: "" };
  if (scanned.kind !== "{") throw new WireError("malformed", "the register frame must be a JSON object");
  return decodeRegister(scanned.members);
}

function decodeRegister(members: readonly JsonMember[]): RegisterRequest {
  const f = { protocol_version: "", type: "", token: "", name: "" };
  REGISTER.each(members, (field, raw) => {
    f[field] = str(raw, field) ?? f[field];
  });
  return { type: f.type, token: f.token, name: f.name, protocolVersion: f.protocol_version };
}

/**
 * The `delivery_key` of a deliver frame that may not decode (nesting beyond the limit, a bad
 * envelope), so the message can still be acked once; `undefined` when there is none to find.
 */
export function peekDeliveryKey(text: string): string | undefined {
  try {
    let key: string | undefined;
    DELIVER.each(scanJson(text, Number.POSITIVE_INFINITY).members, (f, raw) => {
      if (f === "delivery_key") key = str(raw, f) ?? key;
    });
    return key;
  } catch {
    return undefined;
  }
}

/** Serializes a frame as peerbus does (Go field order and escaping). */
export function encodeFrame(frame: Frame): string {
  const head = `{"protocol_version":"${PROTOCOL_VERSION}","type":"${frame.type}"`;
  switch (frame.type) {
    case "register":
      return `${head},"token":${goJsonString(frame.token)},"name":${goJsonString(frame.name)}}`;
    case "ack":
      return `${head},"id":${goJsonString(frame.id)}}`;
    case "peers":
      return `${head},"names":${frame.names === undefined ? "null" : `[${frame.names.map(goJsonString).join(",")}]`}}`;
    case "deliver":
      return `${head},"delivery_key":${goJsonString(frame.deliveryKey)},"envelope":${encodeEnvelope(frame.envelope)}}`;
    case "error":
      return `${head},"code":${goJsonString(frame.code)},"message":${goJsonString(frame.message)}${frame.id === undefined ? "" : `,"id":${goJsonString(frame.id)}`}}`;
    case "envelope":
      return encodeEnvelope(frame.envelope);
  }
}

/** Bytes of the deliver frame {@link encodeDeliver} builds for a key and an envelope of `envelopeBytes` bytes. */
export function deliverFrameSize(deliveryKey: string, envelopeBytes: number): number {
  return Buffer.byteLength(deliverHead(deliveryKey)) + envelopeBytes + 1;
}

/** Splices already encoded envelope bytes into a deliver frame's bytes without re-encoding them. */
export function encodeDeliver(deliveryKey: string, encodedEnvelope: Uint8Array): Buffer {
  const head = deliverHead(deliveryKey);
  const headBytes = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headBytes + encodedEnvelope.length + 1);
  out.write(head, 0, "utf8");
  out.set(encodedEnvelope, headBytes);
  out[out.length - 1] = 125;
  return out;
}

function isEnvelopeMember(name: string): boolean {
  return DELIVER.field(name) === "envelope";
}

function deliverHead(deliveryKey: string): string {
  return `{"protocol_version":"${PROTOCOL_VERSION}","type":"deliver","delivery_key":${goJsonString(deliveryKey)},"envelope":`;
}

function str(raw: string, field: string): string | undefined {
  return decodeGoString(raw, `"${field}"`);
}

function stringArray(raw: string): string[] | undefined {
  if (raw === "null") return undefined;
  const names = JSON.parse(replaceRawBytes(raw)) as unknown;
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    throw new WireError("malformed", "peers.names must be an array of strings");
  }
  return names.map((n: string) => (n.isWellFormed() ? n : n.toWellFormed()));
}
