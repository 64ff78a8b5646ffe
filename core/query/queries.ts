import type { ClickHouseClient } from '@clickhouse/client';

export type Granularity = 'minute' | 'hour' | 'day';

// Table names come from this allowlist only; every value from a request is a query parameter.
const TABLES: Record<Granularity, string> = { minute: 'agg_minute', hour: 'agg_hour', day: 'agg_day' };

export interface TimeseriesQuery {
  site: string;
  event?: string | undefined;
  fromMs: number;
  toMs: number;
  granularity: Granularity;
  /** Dimension equality filters, e.g. { country: 'DE' }. */
  filters?: Record<string, string> | undefined;
}

export interface TimeseriesPoint {
  windowStartMs: number;
  events: number;
  uniques: number;
  valueSum: number;
  p50: number | null;
  p95: number | null;
  status: 'provisional' | 'final';
}

export interface Totals {
  events: number;
  uniques: number;
}

function whereClause(q: TimeseriesQuery, params: Record<string, unknown>): string {
  const parts = [
    'site = {site:String}',
    'window_start >= fromUnixTimestamp64Milli({from_ms:Int64})',
    'window_start < fromUnixTimestamp64Milli({to_ms:Int64})',
  ];
  params.site = q.site;
  params.from_ms = q.fromMs;
  params.to_ms = q.toMs;
  if (q.event !== undefined) {
    parts.push('event = {event:String}');
    params.event = q.event;
  }
  Object.entries(q.filters ?? {}).forEach(([name, value], i) => {
    parts.push(`dims[{dim_name_${i}:String}] = {dim_value_${i}:String}`);
    params[`dim_name_${i}`] = name;
    params[`dim_value_${i}`] = value;
  });
  return parts.join(' AND ');
}

/**
 * Events, unique users and value quantiles per window, each point marked provisional until
 * every aggregator partition that saw the window has declared it final.
 */
export async function queryTimeseries(client: ClickHouseClient, q: TimeseriesQuery): Promise<TimeseriesPoint[]> {
  const params: Record<string, unknown> = {};
  const where = whereClause(q, params);
  const rs = await client.query({
    query: `
      SELECT toUnixTimestamp64Milli(a.window_start) AS t, a.events, a.uniques, a.value_sum, a.p50, a.p95,
             if(s.provisional = 0 AND s.windows > 0, 'final', 'provisional') AS status
      FROM (
        SELECT window_start, sum(events) AS events, tributary_hll_estimate(maxMap(users_hll)) AS uniques,
               sum(value_sum) AS value_sum,
               tributary_sketch_quantile(0.5, sumMap(value_sketch)) AS p50,
               tributary_sketch_quantile(0.95, sumMap(value_sketch)) AS p95
        FROM ${TABLES[q.granularity]} WHERE ${where} GROUP BY window_start
      ) AS a
      LEFT JOIN (
        SELECT ${q.granularity === 'minute' ? 'window_start' : q.granularity === 'hour' ? 'toStartOfHour(window_start)' : 'toStartOfDay(window_start)'} AS ws,
               countIf(status = 'provisional') AS provisional, count() AS windows
        FROM window_status FINAL
        WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64}) AND window_start < fromUnixTimestamp64Milli({to_ms:Int64})
        GROUP BY ws
      ) AS s ON s.ws = a.window_start
      ORDER BY t`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ t: string | number; events: string | number; uniques: number; value_sum: number; p50: number | null; p95: number | null; status: 'provisional' | 'final' }>();
  return rows.map((r) => ({
    windowStartMs: Number(r.t),
    events: Number(r.events),
    uniques: Math.round(Number(r.uniques)),
    valueSum: Number(r.value_sum),
    p50: r.p50 === null || Number.isNaN(Number(r.p50)) ? null : Number(r.p50),
    p95: r.p95 === null || Number.isNaN(Number(r.p95)) ? null : Number(r.p95),
    status: r.status,
  }));
}

/** Total events and unique users over a range: HLL registers merged in SQL, never summed. */
export async function queryTotals(client: ClickHouseClient, q: Omit<TimeseriesQuery, 'granularity'> & { granularity?: Granularity }): Promise<Totals> {
  const params: Record<string, unknown> = {};
  const where = whereClause({ ...q, granularity: q.granularity ?? 'minute' }, params);
  const rs = await client.query({
    query: `SELECT sum(events) AS events, tributary_hll_estimate(maxMap(users_hll)) AS uniques
            FROM ${TABLES[q.granularity ?? 'minute']} WHERE ${where}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ events: string | number; uniques: number }>();
  return { events: Number(row?.events ?? 0), uniques: Math.round(Number(row?.uniques ?? 0)) };
}
