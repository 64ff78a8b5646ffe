import type { ClickHouseClient } from '@clickhouse/client';
import { DEFAULT_QUERY_LIMITS, limitSettings, type QueryLimits } from './limits.ts';
import { MERGE_FUNCTION, TABLE_COLUMNS, columnsOf, measureSql, measureValue, type MeasureColumns, type MeasureSpec } from './measures.ts';
import { type BreakdownQuery, type DimensionFilters, type Granularity, type RangeQuery } from './params.ts';

export type { Granularity } from './params.ts';

// Table names come from this allowlist only; every value from a request is a query parameter,
// dimension names included (they are Map keys).
const TABLES: Record<Granularity, string> = { minute: 'agg_minute', hour: 'agg_hour', day: 'agg_day' };

export type WindowStatusLabel = 'provisional' | 'final';

/** Measure values keyed by metric name (`count`, `uniques`, `p95`, ...). */
export type MeasureValues = Record<string, number | null>;

export interface TimeseriesPoint {
  /** Start of the bucket, epoch milliseconds. */
  windowStartMs: number;
  status: WindowStatusLabel;
  values: MeasureValues;
}

export interface BreakdownRow {
  /** The dimension value; null for events that did not carry the dimension. */
  value: string | null;
  values: MeasureValues;
}

export interface Breakdown {
  status: WindowStatusLabel;
  rows: BreakdownRow[];
  /** Every value after the top `limit`, merged (sketches merged, not summed); null when none. */
  rest: { distinctValues: number; values: MeasureValues } | null;
}

export interface StatusOptions {
  /** The aggregator's ALLOWED_LATENESS_MS: a partition's bucket is closed once its watermark passed bucket end + this. */
  allowedLatenessMs: number;
  /** Time, memory and result-size limits of every query; default DEFAULT_QUERY_LIMITS. */
  limits?: QueryLimits;
}

type Params = Record<string, unknown>;

/** Every SELECT of the query API goes through here: it carries the limits as its SETTINGS clause. */
async function selectRows<T>(client: ClickHouseClient, sql: string, params: Params, limits: QueryLimits | undefined): Promise<T[]> {
  const rs = await client.query({ query: `${sql}\n${limitSettings(limits ?? DEFAULT_QUERY_LIMITS)}`, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Aliases of the per-value merged columns in a breakdown's inner query. */
const MERGED_COLUMNS: MeasureColumns = {
  events: 'p_events',
  valueCount: 'p_value_count',
  valueSum: 'p_value_sum',
  valueMin: 'p_value_min',
  valueMax: 'p_value_max',
  usersHll: 'p_users_hll',
  valueSketch: 'p_value_sketch',
};

function whereClause(q: Pick<RangeQuery, 'site' | 'event' | 'fromMs' | 'toMs' | 'filters'>, params: Params): string {
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
  filtersSql(q.filters, params, parts);
  return parts.join(' AND ');
}

function filtersSql(filters: DimensionFilters, params: Params, parts: string[]): void {
  filters.forEach(({ name, values }, i) => {
    parts.push(`dims[{dim_name_${i}:String}] IN {dim_values_${i}:Array(String)}`);
    params[`dim_name_${i}`] = name;
    params[`dim_values_${i}`] = values;
  });
}

function measuresSql(measures: MeasureSpec[], columns: MeasureColumns, params: Params): string {
  // Aliases m_0, m_1, ... never collide with column names, which the analyzer would resolve to the alias.
  return measures
    .map((s, i) => {
      if (s.measure.kind === 'quantile') params[`q_${i}`] = s.measure.q;
      return `${measureSql(s.measure, columns, `q_${i}`)} AS m_${i}`;
    })
    .join(',\n       ');
}

function readMeasures(measures: MeasureSpec[], row: Record<string, unknown>): MeasureValues {
  const values: MeasureValues = {};
  measures.forEach((s, i) => {
    values[s.name] = measureValue(s.measure, row[`m_${i}`]);
  });
  return values;
}

// Bucket start and end (epoch ms) of a window_status row, for each granularity. Hour and day
// buckets are whole UTC hours and days, as in the agg_hour / agg_day views.
const STATUS_BUCKET: Record<Granularity | 'range', { start: string; end: string }> = {
  minute: { start: 'toUnixTimestamp64Milli(window_start)', end: 'toUnixTimestamp64Milli(window_start) + window_size_ms' },
  hour: { start: 'intDiv(toUnixTimestamp64Milli(window_start), 3600000) * 3600000', end: 'intDiv(toUnixTimestamp64Milli(window_start), 3600000) * 3600000 + 3600000' },
  day: { start: 'intDiv(toUnixTimestamp64Milli(window_start), 86400000) * 86400000', end: 'intDiv(toUnixTimestamp64Milli(window_start), 86400000) * 86400000 + 86400000' },
  range: { start: '{from_ms:Int64}', end: '{to_ms:Int64}' },
};

/**
 * Provisional or final, per bucket. The aggregator writes one window_status row per (window,
 * aggregator partition that saw data in it); a bucket is final when
 *   1. it has status rows and the newest version of each is final or corrected, and
 *   2. every partition with a row in the bucket has reported a watermark at or past
 *      bucket end + allowed lateness (the largest watermark of its status rows and of its
 *      partition_progress rows, written while it has no window rows to write), so none of
 *      its windows in the bucket, including those that had no data yet, can still change
 *      other than by a correction.
 * For minute buckets (2) follows from (1); for hour, day and whole-range buckets it is what
 * makes "all its windows are final" true for windows that have no row yet.
 * Read before the numbers: the writer inserts deltas before statuses, so numbers read after a
 * final status include every delta that status covers.
 */
export async function queryBucketStatus(
  client: ClickHouseClient,
  q: Pick<RangeQuery, 'fromMs' | 'toMs'>,
  bucket: Granularity | 'range',
  options: StatusOptions,
): Promise<Map<number, WindowStatusLabel>> {
  const { start, end } = STATUS_BUCKET[bucket];
  const rows = await selectRows<{ bucket_ms: number | string; windows: number | string; provisional: number | string; slack_ms: number | string }>(
    client,
    `
      SELECT r.bucket_ms AS bucket_ms,
             count() AS windows,
             countIf(r.status = 'provisional') AS provisional,
             min(ifNull(toUnixTimestamp64Milli(w.watermark), 0) - r.bucket_end_ms) AS slack_ms
      FROM (
        SELECT ${start} AS bucket_ms, ${end} AS bucket_end_ms, partition, status
        FROM window_status FINAL
        WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64}) AND window_start < fromUnixTimestamp64Milli({to_ms:Int64})
      ) AS r
      LEFT JOIN (
        -- Watermarks only grow, so the maximum over all versions is the newest; no FINAL needed.
        -- partition_progress carries them on while a partition writes no window rows.
        SELECT partition, max(watermark) AS watermark
        FROM (
          SELECT partition, watermark FROM window_status WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64})
          UNION ALL
          SELECT partition, watermark FROM partition_progress
        )
        GROUP BY partition
      ) AS w ON w.partition = r.partition
      GROUP BY r.bucket_ms`,
    { from_ms: q.fromMs, to_ms: q.toMs },
    options.limits,
  );
  const statuses = new Map<number, WindowStatusLabel>();
  for (const row of rows) {
    const final = Number(row.windows) > 0 && Number(row.provisional) === 0 && Number(row.slack_ms) >= options.allowedLatenessMs;
    statuses.set(Number(row.bucket_ms), final ? 'final' : 'provisional');
  }
  return statuses;
}

/**
 * The requested measures per bucket of the granularity (its table: agg_minute, agg_hour,
 * agg_day), each bucket marked provisional or final. Buckets without events are absent.
 *
 * @example
 * await queryTimeseries(client, { site: 'demo', event: undefined, fromMs, toMs, granularity: 'hour',
 *   filters: [{ name: 'country', values: ['DE'] }], measures: [parseMeasure('p95')!] }, { allowedLatenessMs: 5000 });
 */
export async function queryTimeseries(client: ClickHouseClient, q: RangeQuery, options: StatusOptions): Promise<TimeseriesPoint[]> {
  const statuses = await queryBucketStatus(client, q, q.granularity, options);
  const params: Params = {};
  const where = whereClause(q, params);
  const rows = await selectRows<Record<string, unknown> & { bucket_ms: number | string }>(
    client,
    `
      SELECT toUnixTimestamp64Milli(window_start) AS bucket_ms,
       ${measuresSql(q.measures, TABLE_COLUMNS, params)}
      FROM ${TABLES[q.granularity]}
      WHERE ${where}
      GROUP BY window_start
      ORDER BY window_start`,
    params,
    options.limits,
  );
  return rows.map((row) => {
    const windowStartMs = Number(row.bucket_ms);
    return { windowStartMs, status: statuses.get(windowStartMs) ?? 'provisional', values: readMeasures(q.measures, row) };
  });
}

/** The requested measures over the whole range, and whether the whole range is final. */
export async function queryRangeTotals(client: ClickHouseClient, q: RangeQuery, options: StatusOptions): Promise<{ status: WindowStatusLabel; values: MeasureValues }> {
  const statuses = await queryBucketStatus(client, q, 'range', options);
  const params: Params = {};
  const where = whereClause(q, params);
  const [row] = await selectRows<Record<string, unknown>>(client, `SELECT ${measuresSql(q.measures, TABLE_COLUMNS, params)} FROM ${TABLES[q.granularity]} WHERE ${where}`, params, options.limits);
  return { status: statuses.get(q.fromMs) ?? 'provisional', values: readMeasures(q.measures, row ?? {}) };
}

/**
 * The requested measures per value of one dimension over the range, top `limit` values by
 * event count (ties by value), the other values merged into `rest`. Values are merged in two
 * steps — per dimension value, then per output row — with the columns' own merge functions,
 * so `rest.uniques` is the distinct count of the union, not a sum of distinct counts.
 */
export async function queryBreakdown(client: ClickHouseClient, q: BreakdownQuery, options: StatusOptions): Promise<Breakdown> {
  const statuses = await queryBucketStatus(client, q, 'range', options);
  const params: Params = { by: q.by, limit: q.limit };
  const where = whereClause(q, params);
  const needed = new Set<keyof MeasureColumns>(['events']);
  for (const s of q.measures) for (const c of columnsOf(s.measure)) needed.add(c);
  const inner = [...needed].map((c) => `${MERGE_FUNCTION[c]}(${TABLE_COLUMNS[c]}) AS ${MERGED_COLUMNS[c]}`).join(', ');
  const rows = await selectRows<Record<string, unknown> & { slot: number | string; value: string | null; distinct_values: number | string }>(
    client,
    `
      SELECT slot, any(value) AS value, count() AS distinct_values,
       ${measuresSql(q.measures, MERGED_COLUMNS, params)}
      FROM (
        SELECT *, row_number() OVER (ORDER BY ${MERGED_COLUMNS.events} DESC, value ASC) AS rank
        FROM (
          SELECT if(mapContains(dims, {by:String}), dims[{by:String}], NULL) AS value, ${inner}
          FROM ${TABLES[q.granularity]}
          WHERE ${where}
          GROUP BY value
        )
      )
      GROUP BY if(rank <= {limit:UInt32}, rank, 0) AS slot
      ORDER BY slot = 0, slot`,
    params,
    options.limits,
  );
  const result: Breakdown = { status: statuses.get(q.fromMs) ?? 'provisional', rows: [], rest: null };
  for (const row of rows) {
    const values = readMeasures(q.measures, row);
    if (Number(row.slot) === 0) result.rest = { distinctValues: Number(row.distinct_values), values };
    else result.rows.push({ value: row.value, values });
  }
  return result;
}

/** Total events and unique users over a range: HLL registers merged in SQL, never summed. */
export async function queryTotals(
  client: ClickHouseClient,
  q: { site: string; event?: string | undefined; fromMs: number; toMs: number; granularity?: Granularity; filters?: Record<string, string> },
  limits?: QueryLimits,
): Promise<{ events: number; uniques: number }> {
  const params: Params = {};
  const where = whereClause(
    { site: q.site, event: q.event, fromMs: q.fromMs, toMs: q.toMs, filters: Object.entries(q.filters ?? {}).map(([name, value]) => ({ name, values: [value] })) },
    params,
  );
  const [row] = await selectRows<{ events: string | number; uniques: number }>(
    client,
    `SELECT sum(events) AS events, tributary_hll_estimate(maxMap(users_hll)) AS uniques FROM ${TABLES[q.granularity ?? 'minute']} WHERE ${where}`,
    params,
    limits,
  );
  return { events: Number(row?.events ?? 0), uniques: Math.round(Number(row?.uniques ?? 0)) };
}
