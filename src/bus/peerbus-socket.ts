import type { WebSocket } from "ws";
import { BusCloseCode, tooBigReason } from "./wire/close-codes.js";

/**
 * The server-side socket class the broker hands to `ws`: `ws` closes an oversize frame with
 * 1009 and no reason, peerbus with `"read limited at <limit + 1> bytes"`; this fills in the
 * reason so peers see exactly what a peerbus broker sends.
 */
export function peerbusSocketClass(base: typeof WebSocket, maxFrameBytes: number): typeof WebSocket {
  return class PeerbusSocket extends base {
    override close(code?: number, data?: string | Buffer): void {
      super.close(code, code === BusCloseCode.tooBig && data === undefined ? tooBigReason(maxFrameBytes) : data);
    }
  };
}
