import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmissionWriter } from '../../core/clickhouse/emission-writer.ts';
import { withInsertMetrics } from '../../core/clickhouse/instrumented-client.ts';
import { createAggregatorMetrics, createMetricsRegistry } from '../../core/metrics.ts';
import { pino } from 'pino';
import type { Logger } from '../../core/log.ts';
import { networkInterfaces } from 'node:os';
import { parseCoreConfig } from '../../core/config/core-config.ts';
import { serveMetrics } from '../../core/metrics-server.ts';
import { createQueryApp } from '../../core/query/api.ts';
import { exceededLimit } from '../../core/query/limits.ts';
import { queryTotals } from '../../core/query/queries.ts';
import { resolveQueryAccess, type QueryAccess } from '../../core/query/read-access.ts';
import {
  HOUR,
  MINUTE,
  createSeeder,
  emissionOf,
  exactQuantile,
  expectedOf,
  jsQuantile,
  latency,
  openMigratedClickHouse,
  rng,
  statusRow,
  type Expected,
  type SeedEvent,
} from './query-fixtures.ts';

// The query API against the real embedded ClickHouse: rows written by the emission writer, as
// the aggregator writes them, and every number checked against values computed from the raw
// events. Timeline (window = 1 minute, allowed lateness 5 s), three aggregator partitions:
//   08:10        partition 2 only; final; its watermark 09:00:02 (< 09:00 + 5 s)
//   09:00..09:50 every 10 minutes, partitions 0 and 1; final
//   10:00..10:29 partitions 0 and 1; final on 0 (watermark 10:31); on 1 final up to 10:24 and
//                provisional from 10:25 (watermark 10:25:30)
// So: minute 08:10 final but hour 8 provisional (lateness not yet passed on partition 2);
// hour 9 final; minutes 10:25.. and hour 10 provisional; the day provisional.

const DAY0 = Date.UTC(2025, 0, 15);
const at = (h: number, m: number, s = 0): number => DAY0 + h * HOUR + m * MINUTE + s * 1000;
const LATENESS_MS = 5000;
const SITES = ['a.example', "o'reilly.example"];
const COUNTRIES: Array<[string | undefined, number]> = [['DE', 0.4], ['FR', 0.25], ['US', 0.2], ['JP', 0.1], [undefined, 0.05]];
const PATHS = ['/', '/pricing', '/docs'];
const W0 = at(10, 31);
const W1 = at(10, 25, 30);
const W2 = at(9, 0, 2);

const OPEN: QueryAccess = { kind: 'open' };
let ch: ClickHouse;
let app: ReturnType<typeof createQueryApp>;
let events: SeedEvent[] = [];

function pick<T>(u: () => number, weighted: Array<[T, number]>): T {
  let x = u();
  for (const [v, w] of weighted) {
    if ((x -= w) < 0) return v;
  }
  return (weighted[weighted.length - 1] as [T, number])[0];
}

function generate(): SeedEvent[] {
  const u = rng(20250115);
  const out: SeedEvent[] = [];
  const minuteEvents = (site: string, t0: number, partitions: number[], n: number): void => {
    for (let i = 0; i < n; i++) {
      const signup = u() < 0.15;
      const country = pick(u, COUNTRIES);
      const path = PATHS[Math.floor(u() * PATHS.length)] as string;
      const dims: Record<string, string> = { path };
      if (country !== undefined) dims.country = country;
      const value = signup ? (u() < 0.5 ? [10, 20, 50][Math.floor(u() * 3)] : undefined) : latency(u, 5 + 0.3 * COUNTRIES.findIndex(([c]) => c === country));
      out.push({
        site,
        event: signup ? 'signup' : 'pageview',
        timeMs: t0 + Math.floor(u() * MINUTE),
        dims,
        user: `${site}-user-${Math.floor(u() * 400)}`,
        ...(value === undefined ? {} : { value }),
        partition: partitions[Math.floor(u() * partitions.length)] as number,
      });
    }
  };
  minuteEvents('a.example', at(8, 10), [2], 40);
  for (const site of SITES) {
    for (let m = 0; m < 60; m += 10) minuteEvents(site, at(9, m), [0, 1], 30 + Math.floor(u() * 40));
    for (let m = 0; m < 30; m++) minuteEvents(site, at(10, m), [0, 1], 30 + Math.floor(u() * 40));
  }
  return out;
}

function windowsOf(partition: number): number[] {
  return [...new Set(events.filter((e) => e.partition === partition).map((e) => Math.floor(e.timeMs / MINUTE) * MINUTE))].sort((a, b) => a - b);
}

const seededStatus = (ms: number): 'final' | 'provisional' => (ms >= at(10, 25) && ms < at(10, 30) ? 'provisional' : 'final');

beforeAll(async () => {
  ch = await openMigratedClickHouse('trib-query-api');
  app = createQueryApp(ch.client, { access: OPEN, allowedLatenessMs: LATENESS_MS, registry: createMetricsRegistry({ processMetrics: false }) });
  events = generate();
  const seed = createSeeder(ch);
  for (const p of [0, 1]) {
    const mine = events.filter((e) => e.partition === p);
    // Two emissions per partition: the second carries a later delta for cells of the first,
    // so numbers only come out right if SQL merges rows.
    const half = Math.floor(mine.length / 2);
    await seed(emissionOf(mine.slice(0, half)), p);
    const statuses = windowsOf(p).map((w) =>
      p === 1 && w >= at(10, 25) ? statusRow(w, 'provisional', W1) : statusRow(w, 'final', p === 0 ? W0 : W1),
    );
    await seed(emissionOf(mine.slice(half), statuses), p);
  }
  await seed(emissionOf(events.filter((e) => e.partition === 2), windowsOf(2).map((w) => statusRow(w, 'final', W2))), 2);
});

afterAll(async () => {
  await ch?.close();
});

async function get(path: string, a = app): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await a.request(path);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type Row = Record<string, number | string | null>;

function select(f: { site?: string; event?: string; from: number; to: number; dims?: Record<string, string[]> }): SeedEvent[] {
  return events.filter(
    (e) =>
      (f.site === undefined || e.site === f.site) &&
      (f.event === undefined || e.event === f.event) &&
      e.timeMs >= f.from &&
      e.timeMs < f.to &&
      Object.entries(f.dims ?? {}).every(([k, vs]) => vs.includes(e.dims[k] ?? '')),
  );
}

const QUANTILES = [0.5, 0.9, 0.95, 0.99];

/** Every measure of `row` against the raw events it covers. */
function expectMeasures(row: Row, exp: Expected): void {
  expect(row.count).toBe(exp.count);
  // The same HLL merged in SQL and in JS: the same estimate; and within HLL error of the truth.
  expect(row.uniques).toBe(exp.uniques);
  expect(Math.abs(Number(row.uniques) - exp.distinct)).toBeLessThanOrEqual(Math.max(2, exp.distinct * 0.03));
  if ('sum' in row) expect(row.sum).toBeCloseTo(exp.sum, 6);
  if ('min' in row) expect(row.min).toBe(exp.min);
  if ('max' in row) expect(row.max).toBe(exp.max);
  if ('avg' in row) {
    if (exp.avg === null) expect(row.avg).toBeNull();
    else expect(Number(row.avg)).toBeCloseTo(exp.avg, 6);
  }
  for (const q of QUANTILES) {
    const key = `p${q * 100}`;
    if (!(key in row)) continue;
    const exact = exactQuantile(exp.values, q);
    if (exact === null) {
      expect(row[key]).toBeNull();
      continue;
    }
    // The sketch's guarantee: within 1 % of the exact order statistic; and the JS sketch's number.
    expect(Math.abs(Number(row[key]) - exact) / exact).toBeLessThanOrEqual(0.01 + 1e-12);
    expect(Math.abs(Number(row[key]) - (jsQuantile(exp, q) ?? NaN)) / exact).toBeLessThanOrEqual(1e-9);
  }
}

const ALL = 'count,uniques,sum,avg,min,max,p50,p90,p95,p99';

describe('GET /api/v1/timeseries', () => {
  it('returns every measure per minute, equal to the raw events, with each window provisional or final', async () => {
    const { status, body } = await get(`/api/v1/timeseries?site=a.example&event=pageview&from=${at(8, 0)}&to=${at(11, 0)}&granularity=minute&metrics=${ALL}`);
    expect(status).toBe(200);
    const points = body.points as Row[];
    const minutes = [...new Set(select({ site: 'a.example', event: 'pageview', from: at(8, 0), to: at(11, 0) }).map((e) => Math.floor(e.timeMs / MINUTE) * MINUTE))].sort((a, b) => a - b);
    expect(points.map((p) => p.window_start_ms)).toEqual(minutes);
    for (const p of points) {
      const t = Number(p.window_start_ms);
      expect(p.window_start).toBe(new Date(t).toISOString());
      expectMeasures(p, expectedOf(select({ site: 'a.example', event: 'pageview', from: t, to: t + MINUTE })));
      expect(p.status).toBe(seededStatus(t));
    }
    expect(body.query).toMatchObject({ site: 'a.example', event: 'pageview', granularity: 'minute', from: new Date(at(8, 0)).toISOString(), metrics: ALL.split(',') });
  });

  it('marks an hour final only when all its windows are final and every partition in it passed hour end + lateness', async () => {
    const { body } = await get(`/api/v1/timeseries?site=a.example&from=${new Date(at(8, 0)).toISOString()}&to=${new Date(at(11, 0)).toISOString()}&granularity=hour&metrics=${ALL}`);
    const points = body.points as Row[];
    expect(points.map((p) => [p.window_start, p.status])).toEqual([
      [new Date(at(8, 0)).toISOString(), 'provisional'], // partition 2's watermark is 2 s past 09:00, lateness is 5 s
      [new Date(at(9, 0)).toISOString(), 'final'],
      [new Date(at(10, 0)).toISOString(), 'provisional'],
    ]);
    for (const p of points) {
      const t = Number(p.window_start_ms);
      expectMeasures(p, expectedOf(select({ site: 'a.example', from: t, to: t + HOUR })));
    }
    // Without allowed lateness partition 2's watermark has passed 09:00: hour 8 is final.
    const noLateness = createQueryApp(ch.client, { access: OPEN, allowedLatenessMs: 0 });
    const again = (await get(`/api/v1/timeseries?site=a.example&from=${at(8, 0)}&to=${at(9, 0)}&granularity=hour`, noLateness)).body.points as Row[];
    expect(again.map((p) => p.status)).toEqual(['final']);
  });

  it('reads the day table; the day is provisional while any window in it is', async () => {
    const { body } = await get(`/api/v1/timeseries?site=a.example&from=2025-01-15&to=2025-01-16&granularity=day&metrics=${ALL}`);
    const points = body.points as Row[];
    expect(points).toHaveLength(1);
    expect(points[0]?.status).toBe('provisional');
    expectMeasures(points[0] as Row, expectedOf(select({ site: 'a.example', from: at(0, 0), to: at(24, 0) })));
  });

  it('aligns from/to outward to whole buckets and says so in the response', async () => {
    const { body } = await get(`/api/v1/timeseries?site=a.example&from=${at(9, 10, 30)}&to=${at(9, 20, 1)}&granularity=minute`);
    expect(body.query).toMatchObject({ from: new Date(at(9, 10)).toISOString(), to: new Date(at(9, 21)).toISOString() });
    expect((body.points as Row[]).map((p) => p.window_start_ms)).toEqual([at(9, 10), at(9, 20)]);
  });

  it('filters by dimension: one name is equality, the same name twice is either value, two names are both', async () => {
    const cases: Array<[string, Record<string, string[]>]> = [
      ['filter=country:DE', { country: ['DE'] }],
      ['filter=country:DE&filter=country:JP', { country: ['DE', 'JP'] }],
      ['filter=country:FR&filter=path:/pricing', { country: ['FR'], path: ['/pricing'] }],
    ];
    for (const [filter, dims] of cases) {
      const { status, body } = await get(`/api/v1/timeseries?site=a.example&from=${at(9, 0)}&to=${at(10, 0)}&granularity=hour&metrics=${ALL}&${filter}`);
      expect(status).toBe(200);
      const points = body.points as Row[];
      expect(points).toHaveLength(1);
      expectMeasures(points[0] as Row, expectedOf(select({ site: 'a.example', from: at(9, 0), to: at(10, 0), dims })));
      expect((body.query as { filters: unknown }).filters).toEqual(dims);
    }
  });

  it('defaults to count and uniques and takes any pNN percentile', async () => {
    const def = (await get(`/api/v1/timeseries?site=a.example&from=${at(9, 0)}&to=${at(10, 0)}&granularity=hour`)).body.points as Row[];
    expect(Object.keys(def[0] ?? {}).sort()).toEqual(['count', 'status', 'uniques', 'window_start', 'window_start_ms']);
    const { body } = await get(`/api/v1/timeseries?site=a.example&event=pageview&from=${at(9, 0)}&to=${at(10, 0)}&granularity=hour&metrics=p75,p99.9`);
    const row = (body.points as Row[])[0] as Row;
    const exp = expectedOf(select({ site: 'a.example', event: 'pageview', from: at(9, 0), to: at(10, 0) }));
    for (const [key, q] of [['p75', 0.75], ['p99.9', 0.999]] as const) {
      const exact = exactQuantile(exp.values, q) as number;
      expect(Math.abs(Number(row[key]) - exact) / exact).toBeLessThanOrEqual(0.01 + 1e-12);
    }
  });

  it('reads a site whose name contains a quote, as a plain value', async () => {
    const { body } = await get(`/api/v1/totals?site=${encodeURIComponent("o'reilly.example")}&from=${at(9, 0)}&to=${at(11, 0)}&metrics=count,uniques`);
    const totals = body.totals as Row;
    expect(totals.count).toBe(select({ site: "o'reilly.example", from: at(9, 0), to: at(11, 0) }).length);
  });
});

describe('GET /api/v1/breakdown', () => {
  it('ranks values by count, keeps the top N and merges the rest with its sketches', async () => {
    const { status, body } = await get(`/api/v1/breakdown?site=a.example&by=country&limit=2&from=${at(9, 0)}&to=${at(10, 0)}&metrics=${ALL}`);
    expect(status).toBe(200);
    const range = { site: 'a.example', from: at(9, 0), to: at(10, 0) };
    const byCountry = new Map<string | null, SeedEvent[]>();
    for (const e of select(range)) byCountry.set(e.dims.country ?? null, [...(byCountry.get(e.dims.country ?? null) ?? []), e]);
    const ranked = [...byCountry].sort(([a, x], [b, y]) => y.length - x.length || String(a).localeCompare(String(b)));
    const rows = body.rows as Row[];
    expect(rows.map((r) => r.value)).toEqual(ranked.slice(0, 2).map(([c]) => c));
    rows.forEach((r, i) => {
      expectMeasures(r, expectedOf((ranked[i] as [string, SeedEvent[]])[1]));
      expect(r.status).toBe('final');
    });
    const rest = body.rest as Row;
    expect(rest.distinct_values).toBe(ranked.length - 2);
    // Users who visited from two of the rest's countries count once: a merged sketch, not a sum.
    expectMeasures(rest, expectedOf(ranked.slice(2).flatMap(([, es]) => es)));
    expect(body.status).toBe('final');
    expect(body.query).toMatchObject({ by: 'country', limit: 2 });
  });

  it('returns events without the dimension as value null, and no rest when everything fits', async () => {
    const { body } = await get(`/api/v1/breakdown?site=a.example&by=country&limit=10&from=${at(9, 0)}&to=${at(10, 0)}`);
    const rows = body.rows as Row[];
    expect(rows.map((r) => r.value)).toContain(null);
    expect(rows.find((r) => r.value === null)?.count).toBe(select({ site: 'a.example', from: at(9, 0), to: at(10, 0) }).filter((e) => e.dims.country === undefined).length);
    expect(body.rest).toBeNull();
  });

  it('breaks down by path on the hour table, with filters; provisional when the range is not closed', async () => {
    const { body } = await get(`/api/v1/breakdown?site=a.example&event=pageview&by=path&granularity=hour&filter=country:US&from=${at(8, 0)}&to=${at(11, 0)}&metrics=count,uniques,p90`);
    const range = { site: 'a.example', event: 'pageview', from: at(8, 0), to: at(11, 0), dims: { country: ['US'] } };
    for (const r of body.rows as Row[]) {
      expectMeasures(r, expectedOf(select({ ...range, dims: { ...range.dims, path: [String(r.value)] } })));
      expect(r.status).toBe('provisional');
    }
    expect((body.rows as Row[]).reduce((s, r) => s + Number(r.count), 0)).toBe(select(range).length);
    expect(body.status).toBe('provisional');
  });
});

describe('GET /api/v1/totals', () => {
  it('gives the measures over the range and whether the whole range is final', async () => {
    const closed = (await get(`/api/v1/totals?site=a.example&from=${at(9, 0)}&to=${at(10, 0)}&metrics=${ALL}`)).body.totals as Row;
    expectMeasures(closed, expectedOf(select({ site: 'a.example', from: at(9, 0), to: at(10, 0) })));
    expect(closed.status).toBe('final');
    const open = (await get(`/api/v1/totals?site=a.example&from=${at(9, 0)}&to=${at(10, 30)}&granularity=minute`)).body.totals as Row;
    expect(open.status).toBe('provisional');
    expect(open.count).toBe(select({ site: 'a.example', from: at(9, 0), to: at(10, 30) }).length);
  });
});

describe('validation', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['/api/v1/timeseries', 'missing_parameter', /site is required/],
    ['/api/v1/timeseries?site=a&granularity=week', 'invalid_parameter', /minute, hour or day/],
    ['/api/v1/timeseries?site=a&from=yesterday', 'invalid_parameter', /not a time/],
    ['/api/v1/timeseries?site=a&from=1736931600', 'invalid_parameter', /epoch seconds/],
    ['/api/v1/timeseries?site=a&from=now-1h&to=now-2h', 'invalid_parameter', /must be before/],
    ['/api/v1/timeseries?site=a&from=now-30d&granularity=minute', 'range_too_large', /granularity=hour/],
    ['/api/v1/timeseries?site=a&metrics=count,median', 'invalid_parameter', /not a metric/],
    ['/api/v1/timeseries?site=a&filter=country', 'invalid_parameter', /name:value/],
    ['/api/v1/timeseries?site=a&granularty=hour', 'unknown_parameter', /"granularty"/],
    ['/api/v1/timeseries?site=a&site=b', 'invalid_parameter', /once/],
    ['/api/v1/breakdown?site=a', 'missing_parameter', /by is required/],
    ['/api/v1/breakdown?site=a&by=country&limit=0', 'invalid_parameter', /limit/],
    ['/api/v1/totals?site=a&by=country', 'unknown_parameter', /accepts/],
  ];
  it.each(cases)('%s -> 400 %s', async (path, code, message) => {
    const { status, body } = await get(path);
    expect(status).toBe(400);
    const error = body.error as { code: string; message: string };
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('answers unknown paths with a JSON 404 that lists the endpoints', async () => {
    const { status, body } = await get('/api/v1/nope');
    expect(status).toBe(404);
    expect((body.error as { message: string }).message).toMatch(/\/api\/v1\/timeseries/);
  });
});

describe('SQL injection', () => {
  const PAYLOADS = [
    "' OR 1=1 --",
    "a.example' OR site != '",
    "x'); DROP TABLE agg_minute; --",
    'a.example\\',
    '{site:String}',
    "a.example' UNION ALL SELECT 1 --",
  ];

  async function tableRows(): Promise<number> {
    const rs = await ch.client.query({ query: 'SELECT count() AS n FROM agg_minute', format: 'JSONEachRow' });
    const [row] = await rs.json<{ n: number | string }>();
    return Number(row?.n);
  }

  it('treats hostile values in every parameter as data, never as SQL', async () => {
    const before = await tableRows();
    const range = `from=${at(8, 0)}&to=${at(11, 0)}`;
    const enc = encodeURIComponent;
    for (const p of PAYLOADS) {
      const urls = [
        `/api/v1/timeseries?site=${enc(p)}&${range}`,
        `/api/v1/timeseries?site=a.example&event=${enc(p)}&${range}`,
        `/api/v1/timeseries?site=a.example&filter=${enc(`country:${p}`)}&${range}`,
        `/api/v1/breakdown?site=${enc(p)}&by=country&${range}`,
        `/api/v1/totals?site=a.example&event=${enc(p)}&${range}&metrics=count,uniques,p95`,
      ];
      for (const url of urls) {
        const { status, body } = await get(url);
        expect(status, url).toBe(200);
        // No payload matches a stored value, so nothing comes back: not everything.
        const rows = (body.points ?? body.rows ?? []) as Row[];
        expect(rows, url).toEqual([]);
        if (body.totals) expect((body.totals as Row).count, url).toBe(0);
      }
      // Identifiers and keywords are validated, not bound: anything odd is a 400, never a 500.
      const rejected = [
        `/api/v1/timeseries?site=a.example&filter=${enc(`${p}:DE`)}&${range}`,
        `/api/v1/breakdown?site=a.example&by=${enc(p)}&${range}`,
        `/api/v1/timeseries?site=a.example&granularity=${enc(p)}&${range}`,
        `/api/v1/timeseries?site=a.example&metrics=${enc(`count,${p}`)}&${range}`,
        `/api/v1/breakdown?site=a.example&by=country&limit=${enc(`1${p}`)}&${range}`,
        `/api/v1/timeseries?site=a.example&from=${enc(p)}`,
        `/api/v1/timeseries?site=a.example&to=${enc(p)}`,
      ];
      for (const url of rejected) expect((await get(url)).status, url).toBe(400);
    }
    // A Map key is a parameter too: a hostile dimension value in `by`'s place finds nothing.
    const weird = await get(`/api/v1/breakdown?site=a.example&by=country.x-y_z&${range}`);
    expect(weird.status).toBe(200);
    expect((weird.body.rows as Row[]).map((r) => r.value)).toEqual([null]);
    expect(await tableRows()).toBe(before);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with the API request series', async () => {
    await get(`/api/v1/totals?site=a.example&from=${at(9, 0)}&to=${at(10, 0)}`);
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/tributary_http_requests_total\{service="query_api",method="GET",route="\/api\/v1\/totals",status="200"\} \d+/);
    expect(text).toContain('# TYPE tributary_http_request_duration_seconds histogram');
  });

  it('times every ClickHouse insert by table through withInsertMetrics', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const writer = createEmissionWriter(withInsertMetrics(ch, createAggregatorMetrics(registry)));
    const e: SeedEvent = { site: 'metrics.example', event: 'pageview', timeMs: at(7, 0), dims: {}, user: 'u', partition: 9 };
    await writer.write(emissionOf([e], [statusRow(at(7, 0), 'provisional', undefined)]), 'metrics-test-1', 9);
    const text = await registry.metrics();
    expect(text).toContain('tributary_clickhouse_insert_duration_seconds_count{table="agg_minute"} 1');
    expect(text).toContain('tributary_clickhouse_insert_duration_seconds_count{table="window_status"} 1');
    // The wrapped client still queries.
    const rs = await withInsertMetrics(ch, createAggregatorMetrics(createMetricsRegistry({ processMetrics: false }))).client.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ one: 1 }]);
  });
});

// Finding 6 of issue #10: readers are principals. Keys come through the configuration parser,
// as `tributary query-api` gets them.
const KEY_A = 'rk_reader_a_0123456789abcdef';
const KEY_ALL = 'rk_operator_0123456789abcdef';
const KEY_OTHER = 'rk_reader_b_0123456789abcdef';

function keyedAccess(): QueryAccess {
  const parsed = parseCoreConfig({ QUERY_READ_KEYS: `${KEY_A}:a.example,${KEY_ALL}:*,${KEY_OTHER}:b.example+c.example` });
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  return resolveQueryAccess({ readKeys: parsed.config.queryReadKeys, host: parsed.config.queryHost, dev: false });
}

async function call(a: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }, path: string, key?: string, header?: string): Promise<{ status: number; body: Record<string, unknown>; res: Response }> {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  if (header !== undefined) headers.authorization = header;
  const res = await a.request(path, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, res };
}

function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: pino<never>({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }) };
}

describe('readers need a key outside dev', () => {
  const range = `from=${at(9, 0)}&to=${at(10, 0)}`;
  const urls = (site: string): string[] => [
    `/api/v1/timeseries?site=${encodeURIComponent(site)}&${range}`,
    `/api/v1/breakdown?site=${encodeURIComponent(site)}&by=country&${range}`,
    `/api/v1/totals?site=${encodeURIComponent(site)}&${range}`,
  ];

  it('refuses to start without read keys outside dev, and open access off loopback even in dev', () => {
    expect(() => resolveQueryAccess({ readKeys: [], host: '127.0.0.1', dev: false })).toThrow(/QUERY_READ_KEYS is not set/);
    expect(() => resolveQueryAccess({ readKeys: [], host: '0.0.0.0', dev: true })).toThrow(/QUERY_HOST=0\.0\.0\.0 is not a loopback address/);
    expect(resolveQueryAccess({ readKeys: [], host: '127.0.0.1', dev: true })).toEqual({ kind: 'open' });
  });

  it('answers 401 with a Bearer challenge without a key, with an unknown key or another scheme, and reads nothing', async () => {
    const keyed = createQueryApp(ch.client, { access: keyedAccess() });
    for (const url of urls('a.example')) {
      const none = await call(keyed, url);
      expect(none.status, url).toBe(401);
      expect(none.res.headers.get('www-authenticate')).toBe('Bearer realm="tributary-query"');
      expect(none.body).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/Authorization: Bearer/), request_id: none.res.headers.get('x-request-id') } });
      const wrong = await call(keyed, url, `${KEY_A}x`);
      expect(wrong.status).toBe(401);
      expect(wrong.res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
      // The edge's Basic form, with a valid read key: refused, the key belongs in a Bearer header.
      expect((await call(keyed, url, undefined, `Basic ${btoa(`${KEY_A}:`)}`)).status).toBe(401);
      expect(JSON.stringify(wrong.body)).not.toContain(KEY_A);
    }
  });

  it('lets a key read its own sites only: another site, existing or not, is 403 with the same answer', async () => {
    const keyed = createQueryApp(ch.client, { access: keyedAccess() });
    for (const url of urls('a.example')) expect((await call(keyed, url, KEY_A)).status, url).toBe(200);
    const own = await call(keyed, urls('a.example')[2] as string, KEY_A);
    expect((own.body.totals as Row).count).toBe(select({ site: 'a.example', from: at(9, 0), to: at(10, 0) }).length);

    // o'reilly.example has data; nobody.example never had any: the answers differ only in the request id.
    const strip = (b: Record<string, unknown>): unknown => ({ ...b, error: { ...(b.error as object), request_id: undefined } });
    for (const [i, url] of urls("o'reilly.example").entries()) {
      const existing = await call(keyed, url, KEY_A);
      const missing = await call(keyed, urls('nobody.example')[i] as string, KEY_A);
      expect(existing.status, url).toBe(403);
      expect(missing.status).toBe(403);
      expect(strip(existing.body)).toEqual(strip(missing.body));
      expect((existing.body.error as { code: string }).code).toBe('forbidden');
      expect(JSON.stringify(existing.body)).not.toMatch(/count|points|rows/);
    }
    // A key scoped to two other sites reads neither a.example; the * key reads both.
    expect((await call(keyed, urls('a.example')[0] as string, KEY_OTHER)).status).toBe(403);
    const all = await call(keyed, urls("o'reilly.example")[2] as string, KEY_ALL);
    expect(all.status).toBe(200);
    expect((all.body.totals as Row).count).toBe(select({ site: "o'reilly.example", from: at(9, 0), to: at(10, 0) }).length);
  });

  it('keeps /health open and /metrics behind METRICS_TOKEN when one is set', async () => {
    const token = 'mt_0123456789abcdef';
    const keyed = createQueryApp(ch.client, { access: keyedAccess(), metricsToken: token });
    expect((await keyed.request('/health')).status).toBe(200);
    expect((await keyed.request('/metrics')).status).toBe(401);
    expect((await keyed.request('/metrics', { headers: { authorization: `Bearer ${KEY_ALL}` } })).status).toBe(401);
    const ok = await keyed.request('/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('tributary_http_requests_total');
  });
});

describe('errors answer a request id, never ClickHouse text', () => {
  it('a failing query gives 500 with a generic message; SQL and the engine text only in the log, under the same id', async () => {
    const { logger, lines } = capturedLogger();
    const app500 = createQueryApp(ch.client, { access: OPEN, logger });
    // As if `tributary migrate` had not run: the engine's error quotes the whole SELECT.
    await ch.client.command({ query: 'RENAME TABLE window_status TO window_status_away' });
    let res: Response;
    try {
      res = await app500.request(`/api/v1/timeseries?site=a.example&from=${at(9, 0)}&to=${at(10, 0)}`);
    } finally {
      await ch.client.command({ query: 'RENAME TABLE window_status_away TO window_status' });
    }
    expect(res.status).toBe(500);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal_error', message: expect.stringContaining(id as string), request_id: id } });
    for (const leak of [/select/i, /window_status/, /from_ms/, /Code: \d+/, /DB::Exception/, /UNKNOWN_TABLE/, /ClickHouse/]) expect(text).not.toMatch(leak);
    const logged = lines.find((l) => l.event === 'query_failed');
    expect(logged).toMatchObject({ request_id: id, path: '/api/v1/timeseries', reader: 'dev' });
    expect(String(logged?.err)).toMatch(/window_status/);
  });

  it('keeps a proxy\'s request id and puts one on every answer', async () => {
    const res = await app.request('/api/v1/nope', { headers: { 'x-request-id': 'edge-proxy-1234' } });
    expect(res.headers.get('x-request-id')).toBe('edge-proxy-1234');
    expect(((await res.json()) as { error: { request_id: string } }).error.request_id).toBe('edge-proxy-1234');
    const hostile = await app.request('/health', { headers: { 'x-request-id': 'not an id; rm -rf' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('limits on every query', () => {
  it('stops a result larger than the configured limit with 422, no rows and no SQL', async () => {
    const { logger, lines } = capturedLogger();
    const url = `/api/v1/timeseries?site=a.example&from=${at(8, 0)}&to=${at(11, 0)}&granularity=minute`;
    const unlimited = await get(url);
    expect((unlimited.body.points as Row[]).length).toBeGreaterThan(5);
    const small = createQueryApp(ch.client, { access: OPEN, logger, limits: { maxExecutionMs: 10_000, maxMemoryBytes: 1024 ** 3, maxResultRows: 5 } });
    const res = await small.request(url);
    expect(res.status).toBe(422);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'query_limit_exceeded', message: expect.stringMatching(/more rows than the limit/) } });
    expect(text).not.toMatch(/select|agg_minute|Code: \d+/i);
    expect(lines.find((l) => l.event === 'query_limit_exceeded')).toMatchObject({ limit: 'result_rows', request_id: res.headers.get('x-request-id') });
  });

  it('stops a runaway query at the time limit and a greedy one at the memory limit, and the session keeps its settings', async () => {
    const limited = (sql: string, limits: { maxExecutionMs: number; maxMemoryBytes: number; maxResultRows: number }): Promise<unknown> =>
      queryTotals(ch.client, { site: 'a.example', fromMs: at(9, 0), toMs: at(10, 0), event: sql }, limits).then(
        () => 'answered',
        (err: unknown) => exceededLimit(err),
      );
    // The API's own SQL with a site that has no data is cheap: answered within tiny limits too.
    expect(await limited('pageview', { maxExecutionMs: 5_000, maxMemoryBytes: 64 * 1024 * 1024, maxResultRows: 1 })).toBe('answered');
    // A runaway scan (about 10^11 hashes, hours of CPU) through the same SETTINGS clause: stopped at 0.3 s.
    const { limitSettings } = await import('../../core/query/limits.ts');
    const runaway = ch.client.query({ query: `SELECT count() AS n FROM numbers(100000000000) WHERE sipHash64(number) = 0 ${limitSettings({ maxExecutionMs: 300, maxMemoryBytes: 0, maxResultRows: 0 })}`, format: 'JSONEachRow' });
    await expect(runaway.then(() => undefined, exceededLimit)).resolves.toBe('time');
    const greedy = ch.client.query({ query: `SELECT count() AS n FROM (SELECT number FROM numbers(10000000) GROUP BY number) ${limitSettings({ maxExecutionMs: 0, maxMemoryBytes: 1024 * 1024, maxResultRows: 0 })}`, format: 'JSONEachRow' });
    await expect(greedy.then(() => undefined, exceededLimit)).resolves.toBe('memory');
    // The limits lived only for their query: the shared session (the aggregator's too, under `tributary start`) is unbound.
    const rs = await ch.client.query({ query: "SELECT getSetting('max_result_rows') AS r, getSetting('max_memory_usage') AS m, getSetting('max_execution_time') AS t", format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ r: 0, m: 0, t: 0 }]);
  });
});

describe('where the readers\' and metrics endpoints listen', () => {
  it('binds the query API and /metrics to loopback by default, and refuses /metrics off loopback without a token', async () => {
    const d = parseCoreConfig({});
    if (!d.ok) throw new Error(d.errors.join('\n'));
    expect(d.config.queryHost).toBe('127.0.0.1');
    expect(d.config.metricsHost).toBe('127.0.0.1');
    expect(d.config.queryLimits).toEqual({ maxExecutionMs: 10_000, maxMemoryBytes: 1024 ** 3, maxResultRows: 100_000 });
    const exposed = parseCoreConfig({ QUERY_HOST: '0.0.0.0', METRICS_HOST: '0.0.0.0' });
    expect(exposed.ok ? [] : exposed.errors).toEqual([expect.stringMatching(/^QUERY_HOST=0\.0\.0\.0 serves \/metrics .* set METRICS_TOKEN/), expect.stringMatching(/^METRICS_HOST=0\.0\.0\.0/)]);
    expect(parseCoreConfig({ QUERY_HOST: '0.0.0.0', METRICS_HOST: '0.0.0.0', METRICS_TOKEN: 'mt_0123456789abcdef' }).ok).toBe(true);

    // The aggregator's metrics server: reachable on loopback, not on this machine's other addresses.
    const metrics = await serveMetrics(createMetricsRegistry({ processMetrics: false }), 0);
    try {
      expect(metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect((await fetch(metrics.url)).status).toBe(200);
      const port = new URL(metrics.url).port;
      const external = Object.values(networkInterfaces()).flat().filter((n) => n !== undefined && !n.internal && n.family === 'IPv4');
      for (const n of external) await expect(fetch(`http://${n?.address}:${port}/metrics`)).rejects.toThrow();
    } finally {
      await metrics.close();
    }
    const guarded = await serveMetrics(createMetricsRegistry({ processMetrics: false }), 0, { token: 'mt_0123456789abcdef' });
    try {
      expect((await fetch(guarded.url)).status).toBe(401);
      expect((await fetch(guarded.url, { headers: { authorization: 'Bearer mt_0123456789abcdef' } })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});

// Last: it changes the data the tests above read.
describe('provisional -> final', () => {
  it('turns windows and the hour final once the partition finalizes them, and corrections are counted', async () => {
    const seed = createSeeder(ch);
    const before = (await get(`/api/v1/timeseries?site=a.example&from=${at(10, 0)}&to=${at(11, 0)}&granularity=hour`)).body.points as Row[];
    expect(before[0]?.status).toBe('provisional');

    // Partition 1 finalizes 10:25..10:29; both partitions move past 11:00 + lateness with data
    // at 11:00; and a late partial corrects the already final 10:05 on partition 0.
    const late: SeedEvent[] = [{ site: 'a.example', event: 'pageview', timeMs: at(10, 5, 7), dims: { country: 'DE', path: '/' }, user: 'late-user', value: 123, partition: 0 }];
    const next: SeedEvent[] = [0, 1].map((p) => ({ site: 'a.example', event: 'pageview', timeMs: at(11, 0, 10), dims: { path: '/' }, user: `next-${p}`, value: 1, partition: p }));
    const p1Final = windowsOf(1).filter((w) => w >= at(10, 25)).map((w) => statusRow(w, 'final', at(11, 1, 10)));
    await seed(emissionOf([next[1] as SeedEvent], [...p1Final, statusRow(at(11, 0), 'final', at(11, 1, 10))]), 1);
    await seed(emissionOf([...late, next[0] as SeedEvent], [statusRow(at(10, 5), 'corrected', at(11, 1, 10)), statusRow(at(11, 0), 'final', at(11, 1, 10))]), 0);
    events = [...events, ...late, ...next];

    const minutes = (await get(`/api/v1/timeseries?site=a.example&from=${at(10, 0)}&to=${at(10, 30)}&granularity=minute`)).body.points as Row[];
    expect(minutes.every((p) => p.status === 'final')).toBe(true);
    const corrected = minutes.find((p) => p.window_start_ms === at(10, 5)) as Row;
    expect(corrected.count).toBe(select({ site: 'a.example', from: at(10, 5), to: at(10, 6) }).length);
    const after = (await get(`/api/v1/timeseries?site=a.example&from=${at(10, 0)}&to=${at(11, 0)}&granularity=hour&metrics=${ALL}`)).body.points as Row[];
    expect(after[0]?.status).toBe('final');
    expectMeasures(after[0] as Row, expectedOf(select({ site: 'a.example', from: at(10, 0), to: at(11, 0) })));
  });
});

describe('a partition that went quiet', () => {
  it('makes the last hour it wrote data into final through its recorded progress, without window rows', async () => {
    const hour8 = async (): Promise<unknown[]> =>
      ((await get(`/api/v1/timeseries?site=a.example&from=${at(8, 0)}&to=${at(9, 0)}&granularity=hour`)).body.points as Row[]).map((p) => p.status);
    // Partition 2 wrote only 08:10, and its last status carried a watermark 2 s past 09:00.
    expect(await hour8()).toEqual(['provisional']);
    // Its edges only send heartbeats now: the aggregator records progress, no window rows.
    await createSeeder(ch)({ deltas: [], statuses: [], late: [], watermarkMs: at(9, 0, 6), progressMs: at(9, 0, 6) }, 2);
    expect(await hour8()).toEqual(['final']);
  });
});
