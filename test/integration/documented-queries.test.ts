import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { createQueryApp } from '../../core/query/api.ts';
import { eventName } from '../../edge/pipeline/dimensions.ts';
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
  type SeedEvent,
} from './query-fixtures.ts';

// docs/QUERIES.md can't rot: every ```sql title="..."``` block in it runs here against seeded
// data and its result is checked against numbers computed from the seeded events. Grafana
// variants (```sql grafana title="..."```) run after expanding the plugin's macros and must give
// the same rows as their plain counterpart. A new block without a check fails the test. Events
// are named as the edge names them (page views: eventName of a `page` event), so a query for a
// name the edge never writes finds no rows and fails. The HTTP API's documented answers (fields
// of a timeseries point, `sum` 0 and the other value metrics null without values) are checked too.

const DOC = fileURLToPath(new URL('../../docs/QUERIES.md', import.meta.url));
/** What the edge counts page views and a tracked signup under. */
const PAGE = eventName({ type: 'page' });
const SIGNUP = eventName({ type: 'track', event: 'signup' });
const NOV = (d: number, h = 0, m = 0, s = 0): number => Date.UTC(2026, 10, d, h, m, s);

interface Block {
  title: string;
  grafana: boolean;
  sql: string;
}

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  for (const m of markdown.matchAll(/^```sql( grafana)? title="([^"]+)"\n([\s\S]*?)^```$/gm)) {
    out.push({ title: m[2] as string, grafana: m[1] !== undefined, sql: (m[3] as string).trim() });
  }
  return out;
}

/** What the Grafana ClickHouse plugin does to a query before sending it. */
function expandGrafana(sql: string, o: { fromMs: number; toMs: number; intervalS: number; site: string }): string {
  const from = Math.floor(o.fromMs / 1000);
  const to = Math.floor(o.toMs / 1000);
  const expanded = sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, c: string) => `${c} >= toDateTime(${from}) AND ${c} <= toDateTime(${to})`)
    .replace(/\$__timeInterval\(([^)]+)\)/g, (_, c: string) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${o.intervalS} second)`)
    .replace(/\$\{site:sqlstring\}/g, `'${o.site.replace(/'/g, "''")}'`);
  if (/\$__|\$\{/.test(expanded)) throw new Error(`unexpanded Grafana macro or variable in:\n${expanded}`);
  return expanded;
}

let ch: ClickHouse;
let events: SeedEvent[] = [];
let lateRows: Array<{ site: string; events: number }> = [];
const NOW = Date.now();
const COUNTRIES = ['DE', 'FR', 'US', 'JP', undefined];
const PATHS = ['/', '/pricing', '/docs', '/blog/launch', '/signup'];

function generate(): SeedEvent[] {
  const u = rng(20261102);
  const out: SeedEvent[] = [];
  const minute = (site: string, t0: number, n: number): void => {
    for (let i = 0; i < n; i++) {
      const signup = u() < 0.1;
      const ci = Math.floor(u() * COUNTRIES.length);
      const country = COUNTRIES[ci];
      const dims: Record<string, string> = { path: PATHS[Math.min(PATHS.length - 1, Math.floor(u() * u() * PATHS.length))] as string };
      if (country !== undefined) dims.country = country;
      out.push({
        site,
        event: signup ? SIGNUP : PAGE,
        timeMs: t0 + Math.floor(u() * MINUTE),
        dims,
        user: `${site}-u${Math.floor(u() * 300)}`,
        ...(signup ? {} : { value: latency(u, 6 + 0.2 * ci, 0.8) }),
        partition: 0,
      });
    }
  };
  for (const day of [2, 3, 4, 10]) {
    for (const h of [9, 14, 20]) {
      for (const m of [0, 17, 33]) {
        minute('demo', NOV(day, h, m), 15 + Math.floor(u() * 20));
        minute('other', NOV(day, h, m), 5);
      }
    }
  }
  for (const m of [0, 15, 30, 45]) minute('demo', NOV(20, 9, m), 4);
  for (let m = 0; m < 60; m++) minute('demo', NOV(20, 10, m), 3 + Math.floor(u() * 5));
  const recent = Math.floor(NOW / MINUTE) * MINUTE;
  for (let back = 50; back >= 5; back -= 5) minute('demo', recent - back * MINUTE, 2 + Math.floor(u() * 4));
  return out;
}

beforeAll(async () => {
  ch = await openMigratedClickHouse('trib-doc-queries');
  events = generate();
  const seed = createSeeder(ch);
  // One partition's statuses on 2026-11-20: final before 10:50, provisional from 10:50 on.
  const wm = NOV(20, 10, 50, 30);
  const windows = [...new Set(events.filter((e) => e.timeMs >= NOV(20) && e.timeMs < NOV(21)).map((e) => Math.floor(e.timeMs / MINUTE) * MINUTE))];
  const statuses = windows.map((w) => statusRow(w, w < NOV(20, 10, 50) ? 'final' : 'provisional', wm));
  const emission = emissionOf(events, statuses);
  lateRows = [{ site: 'demo', events: 3 }, { site: 'demo', events: 4 }, { site: 'other', events: 9 }];
  emission.late = lateRows.map((l, i) => ({
    site: l.site, event: PAGE, windowStartMs: NOV(18, 12), dimsKey: '', events: l.events, reason: 'beyond_correction_horizon',
    sourceId: 'edge-1', sequence: i + 1, watermarkMs: NOV(21), receivedAtMs: NOV(21, 8),
  }));
  await seed(emission, 0);
  // Refused events as the rejected-events sink writes them; the first record is written twice
  // (a replay after a crash), which FINAL collapses.
  const rejected = [
    ['demo', '2026-11-20 10:00:01.000', 1, 'm-1', [{ path: '/event', message: 'is required' }], '{}', 0, 10, '2026-11-20 10:00:02.000'],
    ['demo', '2026-11-20 10:00:01.000', 1, 'm-1', [{ path: '/event', message: 'is required' }], '{}', 0, 10, '2026-11-20 10:00:09.000'],
    ['demo', '2026-11-20 10:05:00.000', 0, 'm-2', [{ path: '/timestamp', message: 'must be an RFC 3339 date-time' }], '{}', 0, 11, '2026-11-20 10:05:01.000'],
    ['demo', '2026-11-20 10:06:00.000', 3, 'm-3', [{ path: '/event', message: 'is required' }, { path: '/properties/value', message: 'must be a number' }], '{}', 0, 12, '2026-11-20 10:06:01.000'],
    ['other', '2026-11-20 10:07:00.000', 0, 'm-4', [{ path: '/event', message: 'is required' }], '{}', 0, 13, '2026-11-20 10:07:01.000'],
  ];
  await ch.client.insert({
    table: 'rejected_events',
    columns: ['site', 'received_at', 'batch_index', 'message_id', 'errors', 'event', 'kafka_partition', 'kafka_offset', 'recorded_at'],
    values: rejected,
    format: 'JSONCompactEachRow',
  });
});

afterAll(async () => {
  await ch?.close();
});

type Row = Record<string, unknown>;

async function run(sql: string): Promise<Row[]> {
  // The docs end statements with ';' for clickhouse-client; the HTTP interface takes one statement.
  const rs = await ch.client.query({ query: sql.replace(/;\s*$/, ''), format: 'JSONEachRow' });
  return rs.json<Row>();
}

const demo = (from: number, to: number, event?: string): SeedEvent[] =>
  events.filter((e) => e.site === 'demo' && e.timeMs >= from && e.timeMs < to && (event === undefined || e.event === event));

function groupBy<K>(es: SeedEvent[], key: (e: SeedEvent) => K): Map<K, SeedEvent[]> {
  const m = new Map<K, SeedEvent[]>();
  for (const e of es) m.set(key(e), [...(m.get(key(e)) ?? []), e]);
  return m;
}

/** DateTime and DateTime64(3) as ClickHouse writes them in JSON. */
const dt = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
const dt64 = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/Z$/, '');
const RANGE = { from: NOV(1), to: NOV(8) };

/** Checks of the plain blocks, by title. */
const CHECKS: Record<string, (rows: Row[]) => void> = {
  'Unique users over a date range': (rows) => {
    const exp = expectedOf(demo(RANGE.from, RANGE.to));
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]?.events)).toBe(exp.count);
    expect(Number(rows[0]?.unique_users)).toBe(exp.uniques);
    expect(Math.abs(Number(rows[0]?.unique_users) - exp.distinct)).toBeLessThanOrEqual(exp.distinct * 0.03);
  },
  'p95 of a property by country': (rows) => {
    const byCountry = groupBy(demo(RANGE.from, RANGE.to, PAGE), (e) => e.dims.country ?? '');
    expect(rows.map((r) => r.country).sort()).toEqual([...byCountry.keys()].sort());
    const p95s = rows.map((r) => Number(r.p95_value));
    expect(p95s).toEqual([...p95s].sort((a, b) => b - a));
    for (const r of rows) {
      const exp = expectedOf(byCountry.get(String(r.country)) ?? []);
      expect(Number(r.measured_events)).toBe(exp.valueCount);
      const exact = exactQuantile(exp.values, 0.95) as number;
      expect(Math.abs(Number(r.p95_value) - exact) / exact).toBeLessThanOrEqual(0.01 + 1e-12);
      expect(Number(r.p95_value)).toBeCloseTo(jsQuantile(exp, 0.95) as number, 6);
    }
  },
  'Events per minute for the last hour': (rows) => {
    const recent = groupBy(demo(NOW - HOUR - MINUTE, NOW + MINUTE), (e) => Math.floor(e.timeMs / MINUTE) * MINUTE);
    expect(rows.map((r) => [r.minute, Number(r.events)])).toEqual([...recent].sort(([a], [b]) => a - b).map(([t, es]) => [dt(t), es.length]));
  },
  'Top pages by views': (rows) => {
    const byPath = groupBy(demo(RANGE.from, RANGE.to, PAGE), (e) => e.dims.path as string);
    const ranked = [...byPath].sort(([a, x], [b, y]) => y.length - x.length || (a < b ? -1 : 1)).slice(0, 10);
    expect(rows.map((r) => [r.path, Number(r.views), Number(r.visitors)])).toEqual(ranked.map(([p, es]) => [p, es.length, expectedOf(es).uniques]));
  },
  'Events per minute with the provisional/final flag': (rows) => {
    const minutes = groupBy(demo(NOV(20, 10), NOV(20, 11)), (e) => Math.floor(e.timeMs / MINUTE) * MINUTE);
    expect(rows.map((r) => [r.minute, Number(r.events), r.status])).toEqual(
      [...minutes].sort(([a], [b]) => a - b).map(([t, es]) => [dt64(t), es.length, t < NOV(20, 10, 50) ? 'final' : 'provisional']),
    );
  },
  'Hourly events with the final flag': (rows) => {
    expect(rows.map((r) => [r.hour, Number(r.events), r.status])).toEqual([
      [dt64(NOV(20, 9)), demo(NOV(20, 9), NOV(20, 10)).length, 'final'],
      [dt64(NOV(20, 10)), demo(NOV(20, 10), NOV(20, 11)).length, 'provisional'],
    ]);
  },
  'Rejected events by field error': (rows) => {
    // demo: m-1 (once, despite the replayed row), m-3 on /event; m-2 and m-3 on the others.
    expect(rows.map((r) => [r.path, Number(r.events), r.example])).toEqual([
      ['/event', 2, 'is required'],
      ['/properties/value', 1, 'must be a number'],
      ['/timestamp', 1, 'must be an RFC 3339 date-time'],
    ]);
  },
  'Too-late partials by reason': (rows) => {
    const mine = lateRows.filter((l) => l.site === 'demo');
    expect(rows.map((r) => [r.reason, Number(r.partials), Number(r.events)])).toEqual([['beyond_correction_horizon', mine.length, mine.reduce((s, l) => s + l.events, 0)]]);
  },
};

/** Each Grafana block, the plain block it must agree with, and the dashboard range to expand it with. */
const GRAFANA: Record<string, { plain: string; fromMs: number; toMs: number; intervalS?: number; columns: Record<string, string> }> = {
  'Unique users over the dashboard range': { plain: 'Unique users over a date range', fromMs: RANGE.from, toMs: RANGE.to - 1000, columns: { unique_users: 'unique_users', events: 'events' } },
  'p95 of a property by country over the dashboard range': { plain: 'p95 of a property by country', fromMs: RANGE.from, toMs: RANGE.to - 1000, columns: { country: 'country', p95_value: 'p95_value' } },
  'Events over time': { plain: 'Events per minute for the last hour', fromMs: NOW - HOUR, toMs: NOW, intervalS: 60, columns: { time: 'minute', events: 'events' } },
  'Top pages over the dashboard range': { plain: 'Top pages by views', fromMs: RANGE.from, toMs: RANGE.to - 1000, columns: { path: 'path', views: 'views', visitors: 'visitors' } },
  'Events per minute with the flag over the dashboard range': { plain: 'Events per minute with the provisional/final flag', fromMs: NOV(20, 10), toMs: NOV(20, 11) - 1000, columns: { time: 'minute', events: 'events', status: 'status' } },
};

const all = blocks(readFileSync(DOC, 'utf8'));

describe('docs/QUERIES.md', () => {
  it('has plain and Grafana SQL blocks, each with a check here', () => {
    expect(all.filter((b) => !b.grafana).map((b) => b.title).sort()).toEqual(Object.keys(CHECKS).sort());
    expect(all.filter((b) => b.grafana).map((b) => b.title).sort()).toEqual(Object.keys(GRAFANA).sort());
  });

  it.each(all.filter((b) => !b.grafana).map((b) => [b.title, b] as const))('%s', async (_title, block) => {
    const rows = await run(block.sql);
    expect(rows.length).toBeGreaterThan(0);
    (CHECKS[block.title] as (rows: Row[]) => void)(rows);
  });

  it.each(all.filter((b) => b.grafana).map((b) => [b.title, b] as const))('%s (Grafana, macros expanded)', async (_title, block) => {
    const spec = GRAFANA[block.title];
    if (!spec) throw new Error(`no Grafana spec for ${block.title}`);
    const plain = all.find((b) => b.title === spec.plain);
    if (!plain) throw new Error(`plain block ${spec.plain} is gone`);
    const rows = await run(expandGrafana(block.sql, { fromMs: spec.fromMs, toMs: spec.toMs, intervalS: spec.intervalS ?? 60, site: 'demo' }));
    const expected = await run(plain.sql);
    const project = (rs: Row[], names: string[]): unknown[][] => rs.map((r) => names.map((n) => r[n]));
    expect(rows.length).toBeGreaterThan(0);
    expect(project(rows, Object.keys(spec.columns))).toEqual(project(expected, Object.values(spec.columns)));
  });
});

/** The JSON example under a heading like **`GET /api/v1/timeseries`** in the doc. */
function jsonExampleAfter(markdown: string, heading: string): Record<string, unknown> {
  const at = markdown.indexOf(heading);
  const m = at < 0 ? null : /```json\n([\s\S]*?)^```$/m.exec(markdown.slice(at));
  if (!m) throw new Error(`no JSON example after ${heading} in docs/QUERIES.md`);
  return JSON.parse(m[1] as string) as Record<string, unknown>;
}

describe('docs/QUERIES.md "HTTP query API" answers', () => {
  const get = async (path: string): Promise<Record<string, unknown>> => {
    const app = createQueryApp(ch.client, { access: { kind: 'open' }, allowedLatenessMs: 5000 });
    const res = await app.request(path);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  };
  const range = `from=${new Date(RANGE.from).toISOString()}&to=${new Date(RANGE.to).toISOString()}&granularity=day`;
  const VALUE_METRICS = 'count,sum,avg,min,max,p95';

  it('a timeseries point has the fields of the documented example', async () => {
    const example = jsonExampleAfter(readFileSync(DOC, 'utf8'), '**`GET /api/v1/timeseries`**') as { query: { event: string; metrics: string[] }; points: Row[] };
    expect(example.query.event).toBe(PAGE);
    const body = (await get(`/api/v1/timeseries?site=demo&event=${encodeURIComponent(PAGE)}&${range}&metrics=${example.query.metrics.join(',')}`)) as { points: Row[] };
    expect(body.points.length).toBeGreaterThan(0);
    for (const point of body.points) expect(Object.keys(point).sort()).toEqual(Object.keys(example.points[0] as Row).sort());
  });

  it('without values: sum is 0, avg, min, max and percentiles are null; with values they are numbers', async () => {
    const signups = expectedOf(demo(RANGE.from, RANGE.to, SIGNUP));
    expect(signups.count).toBeGreaterThan(0);
    expect(signups.valueCount).toBe(0);
    const none = (await get(`/api/v1/totals?site=demo&event=${SIGNUP}&${range}&metrics=${VALUE_METRICS}`)) as { totals: Row };
    expect(none.totals).toMatchObject({ count: signups.count, sum: 0, avg: null, min: null, max: null, p95: null });
    const pages = expectedOf(demo(RANGE.from, RANGE.to, PAGE));
    const some = (await get(`/api/v1/totals?site=demo&event=${encodeURIComponent(PAGE)}&${range}&metrics=${VALUE_METRICS}`)) as { totals: Row };
    expect(some.totals.count).toBe(pages.count);
    for (const metric of ['sum', 'avg', 'min', 'max', 'p95']) expect(typeof some.totals[metric], metric).toBe('number');
    expect(some.totals.sum).toBeCloseTo(pages.values.reduce((a, v) => a + v, 0), 3);
  });
});
