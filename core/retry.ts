/**
 * Delay before retry `attempt` (1-based) of a write that ClickHouse refused: `firstMs`, doubling
 * per attempt, at most 10 s. The aggregator and the rejected-events sink retry the same write
 * with it and pull nothing meanwhile (backpressure, docs/OPERATIONS.md).
 */
export function writeRetryDelayMs(attempt: number, firstMs: number): number {
  return Math.min(firstMs * 2 ** Math.min(attempt - 1, 5), 10_000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
