import { type Envelope, encodeEnvelope, envelopeFromMembers, PROTOCOL_VERSION } from "./envelope.js";
import { goJsonString, scanJsonObject } from "./go-json.js";
import { WireError, type WireErrorReason } from "./wire-error.js";

/** Client -> broker, first frame: bind `name` under bearer `token`. */
export interface RegisterFrame {
  readonly type: "register";
  readonly token: string;
  readonly name: string;
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

/**
 * Parses one frame. A JSON object with a `type` is a control frame (its `protocol_version`
 * must be `"v1"`); one without is an envelope. Throws {@link WireError} for anything else.
 */
export function parseFrame(text: string): Frame {
  const members = scanJsonObject(text);
  const rawType = members.get("type");
  if (rawType === undefined) return { type: "envelope", envelope: envelopeFromMembers(members) };
  const type = JSON.parse(rawType) as unknown;
  if (str(members, "protocol_version") !== PROTOCOL_VERSION) {
    throw new WireError("unsupported_version", `protocol_version must be "${PROTOCOL_VERSION}"`);
  }
  switch (type) {
    case "register":
      return { type, token: str(members, "token") ?? "", name: str(members, "name") ?? "" };
    case "ack":
      return { type, id: str(members, "id") ?? "" };
    case "peers": {
      const raw = members.get("names");
      const names = raw === undefined ? undefined : (JSON.parse(raw) as unknown);
      if (
        names !== undefined &&
        names !== null &&
        !(Array.isArray(names) && names.every((n) => typeof n === "string"))
      ) {
        throw new WireError("malformed", "peers.names must be an array of strings");
      }
      return names === undefined || names === null ? { type } : { type, names: names as string[] };
    }
    case "deliver": {
      const raw = members.get("envelope");
      if (raw === undefined) throw new WireError("malformed", "deliver frame without an envelope");
      return {
        type,
        deliveryKey: str(members, "delivery_key") ?? "",
        envelope: envelopeFromMembers(scanJsonObject(raw)),
      };
    }
    case "error":
      return {
        type,
        code: (str(members, "code") ?? "malformed") as WireErrorReason,
        message: str(members, "message") ?? "",
        ...(members.has("id") ? { id: str(members, "id") ?? "" } : {}),
      };
    default:
      throw new WireError("unexpected_frame", `unknown frame type ${rawType}`);
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

/** Splices an already encoded envelope into a deliver frame without re-encoding it. */
export function encodeDeliver(deliveryKey: string, encodedEnvelope: string): string {
  return `{"protocol_version":"${PROTOCOL_VERSION}","type":"deliver","delivery_key":${goJsonString(deliveryKey)},"envelope":${encodedEnvelope}}`;
}

function str(members: Map<string, string>, name: string): string | undefined {
  const raw = members.get(name);
  if (raw === undefined) return undefined;
  const value = JSON.parse(raw) as unknown;
  if (value === null) return undefined;
  if (typeof value !== "string") throw new WireError("malformed", `"${name}" must be a string`);
  return value;
}
