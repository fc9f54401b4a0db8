/**
 * The reconnect delay after `attempt` failures (0-based): exponential from `minMs`, capped at
 * `maxMs`, with "equal jitter" (between half and all of the step) so reconnecting clients
 * spread out but never retry faster than `minMs`.
 */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.max(minMs, Math.round(step / 2 + random() * (step / 2)));
}
