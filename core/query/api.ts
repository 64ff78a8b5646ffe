import type { ClickHouseClient } from '@clickhouse/client';
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { createHttpMetrics, createMetricsRegistry, httpMetricsMiddleware } from '../metrics.ts';
import { metricsAccess } from '../metrics-server.ts';
import { DEFAULT_QUERY_LIMITS, exceededLimit, type QueryLimits } from './limits.ts';
import { parseQuery, type BreakdownQuery, type QueryInput, type RangeQuery } from './params.ts';
import { queryBreakdown, queryRangeTotals, queryTimeseries, type MeasureValues, type WindowStatusLabel } from './queries.ts';
import { mayRead, readAccess, type QueryAccess, type ReaderVariables } from './read-access.ts';

export interface QueryAppOptions {
  /** Who may read which site: `resolveQueryAccess()` from the configuration. */
  access: QueryAccess;
  /** Time, memory and result-size limits of every ClickHouse query. Default DEFAULT_QUERY_LIMITS. */
  limits?: QueryLimits;
  /** METRICS_TOKEN: GET /metrics requires it as a bearer token when set. */
  metricsToken?: string | undefined;
  /** Served at GET /metrics; the app adds its HTTP series to it. Default: a registry of its own. */
  registry?: Registry;
  /** The aggregator's ALLOWED_LATENESS_MS, used to decide when an hour or day is final. Default 0. */
  allowedLatenessMs?: number;
  /** Clock for defaults such as `to=now`. */
  now?: () => number;
  /** Failed queries are logged here (`query_failed`, `query_limit_exceeded`) with their request id. */
  logger?: Logger;
  /**
   * Components whose state `GET /health` reports (`tributary start`: the aggregator, so a
   * dashboard reading stale numbers can tell why). A `failed` one makes `/health` answer 503.
   */
  health?: () => Record<string, { status: string; error?: string }>;
}

type AppEnv = { Variables: ReaderVariables };

function queryInput(c: Context): QueryInput {
  const all = c.req.queries();
  return {
    names: () => Object.keys(all),
    get: (name) => all[name]?.[0],
    all: (name) => all[name] ?? [],
  };
}

/** Every error body: `{ error: { code, message, request_id } }`, the id also in `x-request-id`. */
function errorResponse(c: Context<AppEnv>, status: ContentfulStatusCode, code: string, message: string, headers: Record<string, string> = {}): Response {
  return c.json({ error: { code, message, request_id: c.var.requestId } }, status, headers);
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

// A proxy's request id is kept when it is a plain token; anything else is replaced.
const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

const LIMIT_MESSAGES = {
  time: 'the query ran longer than the time limit',
  memory: 'the query needed more memory than its limit',
  result_rows: 'the query result has more rows than the limit',
} as const;

/**
 * The HTTP query API over the ClickHouse tables, plus `GET /metrics` and `GET /health`.
 * Every row says whether its numbers are `provisional` or `final`; docs/QUERIES.md has the
 * parameters, the response shapes and the same queries as plain SQL.
 *
 * Order per data request: request id → read key (401) → parameters (400) → the key's sites
 * (403, before any query, so the answer is the same whether the site exists or not) → queries,
 * each under the limits (422 when one is exceeded) → any other failure: 500 with a generic
 * message; the details go to the log only, under the request id.
 *
 * @example
 * const app = createQueryApp(client, { access: resolveQueryAccess({ readKeys, host, dev }), registry, allowedLatenessMs });
 * // GET /api/v1/timeseries?site=demo&from=now-1h&granularity=minute&metrics=count,uniques,p95&filter=country:DE
 * //   Authorization: Bearer rk_...
 */
export function createQueryApp(client: ClickHouseClient, options: QueryAppOptions): Hono<AppEnv> {
  const now = options.now ?? Date.now;
  const registry = options.registry ?? createMetricsRegistry({ processMetrics: false });
  const status = { allowedLatenessMs: options.allowedLatenessMs ?? 0, limits: options.limits ?? DEFAULT_QUERY_LIMITS };
  const log = options.logger;

  function readQuery(c: Context<AppEnv>, endpoint: 'breakdown'): BreakdownQuery;
  function readQuery(c: Context<AppEnv>, endpoint: 'timeseries' | 'totals'): RangeQuery;
  function readQuery(c: Context<AppEnv>, endpoint: 'timeseries' | 'totals' | 'breakdown'): RangeQuery | BreakdownQuery {
    const q = endpoint === 'breakdown' ? parseQuery(endpoint, queryInput(c), now()) : parseQuery(endpoint, queryInput(c), now());
    if (!q.ok) throw new HTTPException(400, { res: errorResponse(c, 400, q.error.code, q.error.message) });
    if (!mayRead(c.var.reader, q.value.site)) {
      throw new HTTPException(403, { res: errorResponse(c, 403, 'forbidden', 'this read key does not grant access to the requested site') });
    }
    return q.value;
  }

  const app = new Hono<AppEnv>();
  app.use('*', async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const id = incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    c.set('requestId', id);
    await next();
    c.res.headers.set('x-request-id', id);
  });
  app.use('*', httpMetricsMiddleware(createHttpMetrics(registry, 'query_api')));
  app.get('/health', (c) => {
    const components = options.health?.() ?? {};
    const failed = Object.values(components).some((h) => h.status === 'failed');
    return c.json({ ok: !failed, status: failed ? 'failed' : 'ok', ...components }, failed ? 503 : 200);
  });
  app.use('/metrics', metricsAccess(options.metricsToken));
  app.get('/metrics', async (c) => c.body(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  app.use('/api/*', readAccess(options.access, errorResponse));

  app.get('/api/v1/timeseries', async (c) => {
    const q = readQuery(c, 'timeseries');
    const points = await queryTimeseries(client, q, status);
    return c.json({
      query: echo(q),
      points: points.map((p) => ({ window_start: new Date(p.windowStartMs).toISOString(), window_start_ms: p.windowStartMs, ...withStatus(p.status, p.values) })),
    });
  });

  app.get('/api/v1/breakdown', async (c) => {
    const q = readQuery(c, 'breakdown');
    const b = await queryBreakdown(client, q, status);
    return c.json({
      query: { ...echo(q), by: q.by, limit: q.limit },
      status: b.status,
      rows: b.rows.map((r) => ({ value: r.value, ...withStatus(b.status, r.values) })),
      rest: b.rest === null ? null : { distinct_values: b.rest.distinctValues, ...withStatus(b.status, b.rest.values) },
    });
  });

  app.get('/api/v1/totals', async (c) => {
    const q = readQuery(c, 'totals');
    const t = await queryRangeTotals(client, q, status);
    return c.json({ query: echo(q), totals: withStatus(t.status, t.values) });
  });

  app.notFound((c) =>
    errorResponse(c, 404, 'not_found', `no endpoint ${c.req.method} ${c.req.path}: use GET /api/v1/timeseries, /api/v1/breakdown, /api/v1/totals, /metrics or /health`),
  );
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    const context = { request_id: c.var.requestId, path: c.req.path, reader: c.var.reader?.name, err: err.message };
    const limit = exceededLimit(err);
    if (limit !== undefined) {
      log?.warn({ event: 'query_limit_exceeded', limit, ...context });
      return errorResponse(c, 422, 'query_limit_exceeded', `${LIMIT_MESSAGES[limit]}: narrow the range, use a coarser granularity or fewer values (request id ${c.var.requestId})`);
    }
    // ClickHouse's text quotes SQL and table names: it goes to the log, never to the caller.
    log?.error({ event: 'query_failed', ...context });
    return errorResponse(c, 500, 'internal_error', `the query could not be answered; the server log has the details under request id ${c.var.requestId}`);
  });
  return app;
}
