import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";

const corked = new WeakSet<Duplex>();

/**
 * Bytes held back at most: a longer run of frames (a sender's loop of thousands of messages)
 * goes out in pieces of about this size while the loop goes on, so the peer starts working
 * instead of waiting for the loop to end.
 */
const FLUSH_BYTES = 64 * 1024;

/**
 * Holds back what is written to `ws` until the work of the current tick (its microtasks
 * included) is done, so frames written in a row (the deliveries of one commit, the acks of one
 * read, the sends of one loop) leave in one system call and wake the peer once instead of once
 * per frame; once {@link FLUSH_BYTES} are held, they leave at once. ws keeps its socket in
 * `_socket` (null before it connects and after it closed); without one this does nothing.
 */
export function corkUntilNextTick(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Duplex | null })._socket;
  if (socket === null || socket === undefined) return;
  if (corked.has(socket)) {
    if (socket.writableLength >= FLUSH_BYTES) {
      socket.uncork();
      socket.cork();
    }
    return;
  }
  corked.add(socket);
  socket.cork();
  // A tick scheduled from a microtask runs once every microtask is done: so the frames of this
  // tick's microtasks join, also when this was called from an event handler (a delivery's ack
  // and the next send its handler's promise releases leave together).
  queueMicrotask(() =>
    process.nextTick(() => {
      corked.delete(socket);
      socket.uncork();
    }),
  );
}
