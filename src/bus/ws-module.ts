import { requireOptional } from "../internal/optional-dependency.js";

type Ws = typeof import("ws");

let ws: Ws | undefined;

/**
 * The `ws` package, an optional dependency, loaded when a broker is created or a client
 * connects: a process that only reads and writes bus tables does not need it.
 */
export function loadWs(): Ws {
  ws ??= requireOptional<Ws>("ws", "the bus broker and client (WebSocket)");
  return ws;
}
