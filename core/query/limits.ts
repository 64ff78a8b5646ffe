/**
 * Limits put on every ClickHouse query of the query API, so no request can hold the engine's
 * CPU or memory or send back an unbounded result. 0 leaves a limit to the ClickHouse user's
 * profile (for a server whose query user is `readonly=1` and may not change settings).
 */
export interface QueryLimits {
  /** `max_execution_time`, in milliseconds (sent as seconds with three decimals). */
  maxExecutionMs: number;
  /** `max_memory_usage`, bytes per query. */
  maxMemoryBytes: number;
  /** `max_result_rows`; the API never asks for more than ~10,100 rows (MAX_BUCKETS, breakdown limit + 1). */
  maxResultRows: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  maxExecutionMs: 10_000,
  maxMemoryBytes: 1024 * 1024 * 1024,
  maxResultRows: 100_000,
};

/**
 * The `SETTINGS ...` clause that ends every SELECT of the API. A clause, not the client's
 * `clickhouse_settings`: the embedded engine applies those as session-wide `SET`s, which would
 * outlive the query and bind the aggregator's queries on the same client too (checked with
 * chdb 3.4: `getSetting('max_result_rows')` still 10 on the next query). Overflow modes are
 * `throw`: `break` would cut a result short and answer wrong numbers that look right.
 *
 * @example
 * limitSettings({ maxExecutionMs: 1500, maxMemoryBytes: 0, maxResultRows: 100 });
 * // "SETTINGS max_execution_time = 1.5, timeout_overflow_mode = 'throw', max_result_rows = 100, result_overflow_mode = 'throw'"
 */
export function limitSettings(limits: QueryLimits): string {
  const settings: string[] = [];
  if (limits.maxExecutionMs > 0) settings.push(`max_execution_time = ${(limits.maxExecutionMs / 1000).toFixed(3).replace(/\.?0+$/, '')}`, `timeout_overflow_mode = 'throw'`);
  if (limits.maxMemoryBytes > 0) settings.push(`max_memory_usage = ${limits.maxMemoryBytes}`);
  if (limits.maxResultRows > 0) settings.push(`max_result_rows = ${limits.maxResultRows}`, `result_overflow_mode = 'throw'`);
  return settings.length === 0 ? '' : `SETTINGS ${settings.join(', ')}`;
}

export type QueryLimitKind = 'time' | 'memory' | 'result_rows';

// ClickHouse error types (the same on a server and in chdb, whose errors @clickhouse/client parses).
const LIMIT_ERRORS: Record<string, QueryLimitKind> = {
  TIMEOUT_EXCEEDED: 'time',
  MEMORY_LIMIT_EXCEEDED: 'memory',
  TOO_MANY_ROWS_OR_BYTES: 'result_rows',
  TOO_MANY_ROWS: 'result_rows',
};

/** Which limit a failed query ran into, from the ClickHouse error's `type`; undefined for any other failure. */
export function exceededLimit(err: unknown): QueryLimitKind | undefined {
  if (typeof err !== 'object' || err === null || !('type' in err)) return undefined;
  const type = (err as { type: unknown }).type;
  return typeof type === 'string' ? LIMIT_ERRORS[type] : undefined;
}
