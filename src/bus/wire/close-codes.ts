/** A WebSocket close code with its reason text. */
export interface BusCloseFrame {
  readonly code: number;
  readonly reason: string;
}

/**
 * WebSocket close codes the broker uses: the standard ones peerbus uses. Its clients tell
 * rejections apart by code and reason, so both are kept exactly (see {@link BusClose}).
 */
export const BusCloseCode = Object.freeze({
  /** The broker is shutting down. */
  goingAway: 1001,
  /** The first frame was binary. */
  unsupportedData: 1003,
  /** The first frame does not decode as a register frame. */
  invalidPayload: 1007,
  /** A refused registration (bad token, name claimed, version, ...). Final: reconnecting cannot help. */
  policyViolation: 1008,
  /** A frame over the size limit. */
  tooBig: 1009,
  /** The broker could not persist the peer. */
  internalError: 1011,
});

/** Every close the broker sends, code and reason verbatim as peerbus sends them (plus `invalidName`, storeroom's own). */
export const BusClose = Object.freeze({
  shuttingDown: { code: BusCloseCode.goingAway, reason: "server shutting down" },
  handshakeNotText: { code: BusCloseCode.unsupportedData, reason: "handshake must be text" },
  malformedHandshake: { code: BusCloseCode.invalidPayload, reason: "malformed handshake" },
  notRegister: { code: BusCloseCode.policyViolation, reason: "first frame must be register" },
  unsupportedVersion: { code: BusCloseCode.policyViolation, reason: "unsupported protocol version" },
  emptyName: { code: BusCloseCode.policyViolation, reason: "empty peer name" },
  badToken: { code: BusCloseCode.policyViolation, reason: "invalid bearer token" },
  nameClaimed: { code: BusCloseCode.policyViolation, reason: "name claimed under a different token" },
  /** storeroom only: `"*"` (the broadcast address) or a name with U+0000, which neither engine can store. */
  invalidName: { code: BusCloseCode.policyViolation, reason: "invalid peer name" },
  persistenceFailed: { code: BusCloseCode.internalError, reason: "peer persistence failed" },
} satisfies Record<string, BusCloseFrame>);

/** The reason peerbus gives when a frame exceeds `limit` bytes (code {@link BusCloseCode.tooBig}). */
export function tooBigReason(limit: number): string {
  return `read limited at ${limit + 1} bytes`;
}
