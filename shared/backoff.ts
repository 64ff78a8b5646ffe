/**
 * Retry delays, one formula each, for every runtime (the edge on Node, Workers and Deno, and the
 * central tier).
 */

/**
 * Delay before retry `attempt` (1-based) of a write that ClickHouse refused: `firstMs`, doubling
 * per attempt, at most 10 s. The aggregator and the rejected-events sink retry the same write
 * with it and pull nothing meanwhile (backpressure, docs/OPERATIONS.md).
 */
export function writeRetryDelayMs(attempt: number, firstMs: number): number {
  return Math.min(firstMs * 2 ** Math.min(attempt - 1, 5), 10_000);
}

/**
 * Delay before attempt `attempt` (1-based) of something that failed for a reason that may pass
 * (a consumer restart after a broker outage, a send to Kafka or the gateway): `firstMs` doubling
 * per attempt up to `maxMs`, with "equal jitter" — a random point in the upper half of that — so
 * processes that failed together do not retry in lockstep and the delay is never zero. Always
 * within [min(firstMs·2^(attempt−1), maxMs) / 2, maxMs], rounded to whole milliseconds.
 */
export function jitteredBackoffMs(attempt: number, firstMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(firstMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30), maxMs);
  return Math.round(base / 2 + random() * (base / 2));
}
