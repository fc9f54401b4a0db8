import { goJsonString } from "./wire/go-json.js";

/** The audit event kinds the broker writes. */
export type BrokerAuditEvent = "send" | "deliver" | "ack";

/**
 * peerbus's audit event bytes: a compact JSON object with the fixed key order
 * `{"event","id","from","to"}` as Go's encoding/json writes it (`to` is empty for acks).
 */
export function brokerAuditEvent(event: BrokerAuditEvent, id: string, from: string, to: string): Uint8Array {
  return Buffer.from(
    `{"event":"${event}","id":${goJsonString(id)},"from":${goJsonString(from)},"to":${goJsonString(to)}}`,
    "utf8",
  );
}
