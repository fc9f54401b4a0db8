import { InvalidArgumentError, type StoreErrorOptions } from "../../errors.js";

/** Why a frame was refused; also the `code` of the error frame the broker sends back. */
export type WireErrorReason =
  | "malformed"
  | "unsupported_version"
  | "invalid_envelope"
  | "bad_hmac"
  | "unverifiable"
  | "undeliverable"
  | "sender_mismatch"
  | "unknown_peer"
  | "unexpected_frame"
  | "internal";

/** A frame that breaks wire protocol v1. Nothing was stored for it. */
export class WireError extends InvalidArgumentError {
  /** The protocol-level reason, stable across versions. */
  readonly reason: WireErrorReason;
  constructor(reason: WireErrorReason, message: string, options?: StoreErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
