import type { WebSocket } from "ws";
import { corkUntilNextTick } from "./cork-until-next-tick.js";

/** Bytes waiting in a socket beyond which new messages queue in the store instead of the socket. */
const HIGH_WATER_BYTES = 4 << 20;

/**
 * How one registered connection gets its messages. Until {@link DeliveryLane.attached} its
 * messages only queue in the store. Then drains read them page by page; once a drain finds
 * nothing more pending, the lane is {@link DeliveryLane.live}: a new message is stored already
 * marked delivered, in the same commit as its audit rows, and its frame is written right after
 * that commit. Every change of these states happens in the broker's commit pipeline, so the
 * drain and the live path never send a row twice or out of its sender's order.
 */
export class DeliveryLane {
  /** The peer name. */
  readonly name: string;
  readonly #ws: WebSocket;
  /** True once the registration committed and the peers ack went out. */
  attached = false;
  /** True while nothing is pending for this connection (set only through a commit). */
  live = false;
  /** True while a drain runs. */
  draining = false;
  /** True when a drain was asked for while one ran: it goes round once more. */
  again = false;

  constructor(name: string, ws: WebSocket) {
    this.name = name;
    this.#ws = ws;
  }

  /** True while the connection is open. */
  get open(): boolean {
    return this.#ws.readyState === this.#ws.OPEN;
  }

  /** True when a frame written now goes out without piling up: open and not backed up. */
  get writable(): boolean {
    return this.open && this.#ws.bufferedAmount < HIGH_WATER_BYTES;
  }

  /** Writes one deliver frame (its exact bytes, as text); `done` runs once it left the process or failed. */
  write(frame: Buffer, done?: () => void): void {
    if (!this.open) {
      done?.();
      return;
    }
    corkUntilNextTick(this.#ws);
    this.#ws.send(frame, { binary: false }, done === undefined ? undefined : () => done());
  }
}
