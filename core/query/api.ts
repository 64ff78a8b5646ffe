import type { ClickHouseClient } from '@clickhouse/client';
import { Hono } from 'hono';
import { queryTimeseries, queryTotals, type Granularity } from './queries.ts';

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parseTime(name: string, raw: string | undefined, fallback: number): Parsed<number> {
  if (raw === undefined || raw === '') return { ok: true, value: fallback };
  const asNumber = Number(raw);
  const ms = Number.isFinite(asNumber) ? asNumber : Date.parse(raw);
  if (!Number.isFinite(ms)) return { ok: false, message: `${name}=${JSON.stringify(raw)} is not a time: use epoch milliseconds or ISO 8601 (2026-11-22T10:00:00Z)` };
  return { ok: true, value: ms };
}

function parseFilters(raw: string[] | undefined): Parsed<Record<string, string>> {
  const filters: Record<string, string> = {};
  for (const f of raw ?? []) {
    const i = f.indexOf(':');
    if (i <= 0) return { ok: false, message: `filter=${JSON.stringify(f)} must be name:value, e.g. filter=country:DE` };
    filters[f.slice(0, i)] = f.slice(i + 1);
  }
  return { ok: true, value: filters };
}

/**
 * The HTTP query API over the ClickHouse tables.
 *
 * @example
 * GET /api/v1/timeseries?site=demo&from=2026-11-22T10:00:00Z&to=2026-11-22T11:00:00Z&granularity=minute&filter=country:DE
 */
export function createQueryApp(client: ClickHouseClient, now: () => number = Date.now): Hono {
  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true }));

  function common(c: { req: { query(k: string): string | undefined; queries(k: string): string[] | undefined } }) {
    const site = c.req.query('site');
    if (!site) return { ok: false as const, message: 'site is required, e.g. ?site=demo' };
    const to = parseTime('to', c.req.query('to'), now());
    if (!to.ok) return to;
    const from = parseTime('from', c.req.query('from'), to.value - 3_600_000);
    if (!from.ok) return from;
    const g = c.req.query('granularity') ?? 'minute';
    if (g !== 'minute' && g !== 'hour' && g !== 'day') return { ok: false as const, message: `granularity=${JSON.stringify(g)} must be minute, hour or day` };
    const filters = parseFilters(c.req.queries('filter'));
    if (!filters.ok) return filters;
    return { ok: true as const, value: { site, event: c.req.query('event'), fromMs: from.value, toMs: to.value, granularity: g as Granularity, filters: filters.value } };
  }

  app.get('/api/v1/timeseries', async (c) => {
    const q = common(c);
    if (!q.ok) return c.json({ error: { code: 'bad_query', message: q.message } }, 400);
    return c.json({ query: q.value, points: await queryTimeseries(client, q.value) });
  });
  app.get('/api/v1/totals', async (c) => {
    const q = common(c);
    if (!q.ok) return c.json({ error: { code: 'bad_query', message: q.message } }, 400);
    return c.json({ query: q.value, totals: await queryTotals(client, q.value) });
  });
  app.onError((err, c) => c.json({ error: { code: 'query_failed', message: err.message } }, 500));
  return app;
}
