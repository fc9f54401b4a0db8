import { WireError, type WireErrorReason } from "./wire/wire-error.js";

/**
 * A delivery {@link BusClient} could not hand to `onMessage`: a frame that does not decode, an
 * HMAC that does not verify, or one no receiver can verify. It is reported to `onError` once
 * and acked, so the broker does not deliver it again; keep `frame` from `onError` as a
 * dead letter if you need it.
 */
export class BusDeliveryError extends WireError {
  /** The delivery key the frame was acked by, when one could be read. */
  readonly deliveryKey: string | undefined;
  /** The frame as received. */
  readonly frame: string;
  constructor(reason: WireErrorReason, message: string, frame: string, deliveryKey: string | undefined) {
    super(reason, message);
    this.frame = frame;
    this.deliveryKey = deliveryKey;
  }
}
