import type { ClickHouseClient } from '@clickhouse/client';
import { Hono, type Context } from 'hono';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { createHttpMetrics, createMetricsRegistry, httpMetricsMiddleware } from '../metrics.ts';
import { parseQuery, type QueryError, type QueryInput, type RangeQuery } from './params.ts';
import { queryBreakdown, queryRangeTotals, queryTimeseries, type MeasureValues, type WindowStatusLabel } from './queries.ts';

export interface QueryAppOptions {
  /** Served at GET /metrics; the app adds its HTTP series to it. Default: a registry of its own. */
  registry?: Registry;
  /** The aggregator's ALLOWED_LATENESS_MS, used to decide when an hour or day is final. Default 0. */
  allowedLatenessMs?: number;
  /** Clock for defaults such as `to=now`. */
  now?: () => number;
  /** Failed ClickHouse queries are logged here (`query_failed`). */
  logger?: Logger;
  /**
   * Components whose state `GET /health` reports (`tributary start`: the aggregator, so a
   * dashboard reading stale numbers can tell why). A `failed` one makes `/health` answer 503.
   */
  health?: () => Record<string, { status: string; error?: string }>;
}

function queryInput(c: Context): QueryInput {
  const all = c.req.queries();
  return {
    names: () => Object.keys(all),
    get: (name) => all[name]?.[0],
    all: (name) => all[name] ?? [],
  };
}

function badRequest(c: Context, error: QueryError): Response {
  return c.json({ error }, 400);
}

function echo(q: RangeQuery): Record<string, unknown> {
  return {
    site: q.site,
    event: q.event ?? null,
    from: new Date(q.fromMs).toISOString(),
    to: new Date(q.toMs).toISOString(),
    granularity: q.granularity,
    filters: Object.fromEntries(q.filters.map((f) => [f.name, f.values])),
    metrics: q.measures.map((m) => m.name),
  };
}

function withStatus(status: WindowStatusLabel, values: MeasureValues): Record<string, unknown> {
  return { status, ...values };
}

/**
 * The HTTP query API over the ClickHouse tables, plus `GET /metrics` and `GET /health`.
 * Every row says whether its numbers are `provisional` or `final`; docs/QUERIES.md has the
 * parameters, the response shapes and the same queries as plain SQL.
 *
 * @example
 * const app = createQueryApp(client, { registry, allowedLatenessMs: config.aggregator.allowedLatenessMs });
 * // GET /api/v1/timeseries?site=demo&from=now-1h&granularity=minute&metrics=count,uniques,p95&filter=country:DE
 * // GET /api/v1/breakdown?site=demo&by=path&limit=10&from=2026-11-01&to=2026-12-01&granularity=day
 */
export function createQueryApp(client: ClickHouseClient, options: QueryAppOptions | (() => number) = {}): Hono {
  const o: QueryAppOptions = typeof options === 'function' ? { now: options } : options;
  const now = o.now ?? Date.now;
  const registry = o.registry ?? createMetricsRegistry({ processMetrics: false });
  const status = { allowedLatenessMs: o.allowedLatenessMs ?? 0 };

  const app = new Hono();
  app.use('*', httpMetricsMiddleware(createHttpMetrics(registry, 'query_api')));
  app.get('/health', (c) => {
    const components = o.health?.() ?? {};
    const failed = Object.values(components).some((h) => h.status === 'failed');
    return c.json({ ok: !failed, status: failed ? 'failed' : 'ok', ...components }, failed ? 503 : 200);
  });
  app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));

  app.get('/api/v1/timeseries', async (c) => {
    const q = parseQuery('timeseries', queryInput(c), now());
    if (!q.ok) return badRequest(c, q.error);
    const points = await queryTimeseries(client, q.value, status);
    return c.json({
      query: echo(q.value),
      points: points.map((p) => ({ window_start: new Date(p.windowStartMs).toISOString(), window_start_ms: p.windowStartMs, ...withStatus(p.status, p.values) })),
    });
  });

  app.get('/api/v1/breakdown', async (c) => {
    const q = parseQuery('breakdown', queryInput(c), now());
    if (!q.ok) return badRequest(c, q.error);
    const b = await queryBreakdown(client, q.value, status);
    return c.json({
      query: { ...echo(q.value), by: q.value.by, limit: q.value.limit },
      status: b.status,
      rows: b.rows.map((r) => ({ value: r.value, ...withStatus(b.status, r.values) })),
      rest: b.rest === null ? null : { distinct_values: b.rest.distinctValues, ...withStatus(b.status, b.rest.values) },
    });
  });

  app.get('/api/v1/totals', async (c) => {
    const q = parseQuery('totals', queryInput(c), now());
    if (!q.ok) return badRequest(c, q.error);
    const t = await queryRangeTotals(client, q.value, status);
    return c.json({ query: echo(q.value), totals: withStatus(t.status, t.values) });
  });

  app.notFound((c) =>
    c.json({ error: { code: 'not_found', message: `no endpoint ${c.req.method} ${c.req.path}: use GET /api/v1/timeseries, /api/v1/breakdown, /api/v1/totals, /metrics or /health` } }, 404),
  );
  app.onError((err, c) => {
    o.logger?.error({ event: 'query_failed', path: c.req.path, err: err.message });
    return c.json({ error: { code: 'query_failed', message: `ClickHouse could not answer the query (${err.message}); check that \`tributary migrate\` ran and ClickHouse is reachable` } }, 500);
  });
  return app;
}
