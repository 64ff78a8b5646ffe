import { Hono, type Context } from 'hono';
import type { EdgeConfig } from './config.ts';
import type { Accumulator } from './accumulator.ts';
import { parseJsonBody } from './body/parse-json.ts';
import { readBody } from './body/read-body.ts';
import { rejection, rejectionResponse, type EdgeErrorCode, type RequestRejection } from './errors.ts';
import type { Flusher } from './flusher.ts';
import { createIngest, createIngestState, type IngestCounters, type IngestState } from './ingest.ts';
import { createCountryHook } from './pipeline/country.ts';
import type { EdgeLog } from './ports.ts';
import { createStaticSaltProvider, type MacFactory, type SaltProvider } from './salt-provider.ts';
import { extractEvents, type IngestRoute } from './request-events.ts';
import { basicAuthUser, resolveSite } from './write-key.ts';

export interface EdgeDeps {
  config: EdgeConfig;
  /** Where accepted events are aggregated; drained by `flusher`. */
  accumulator: Accumulator;
  /** Group commit: synchronous endpoints answer after the flush carrying their events is acknowledged. */
  flusher: Flusher;
  /** Clock (epoch ms). Default `Date.now`. */
  now?: () => number;
  /**
   * Country of the client from a trusted source. Default: the `COUNTRY_HEADER` header when
   * configured, else `request.cf.country` (Cloudflare Workers), else none (`unknown`).
   */
  country?: (request: Request) => string | undefined;
  /** Epoch salts for pseudonyms. Default: derived from `PSEUDONYM_SALT` (`createStaticSaltProvider`). */
  saltProvider?: SaltProvider;
  /** HMAC-SHA-256 for pseudonyms. Default `crypto.subtle`; the Node entry passes node:crypto's synchronous one. */
  pseudonymMac?: MacFactory;
  /**
   * Caches, dedup set and counters of the pipeline (`createIngestState`). Default: a new one.
   * Entries that build the app per request (Workers) pass one kept per isolate.
   */
  ingestState?: IngestState;
  log?: EdgeLog;
}

/** Seconds a client waits after `503 salt_unavailable`. */
const SALT_RETRY_AFTER_S = 5;

// Beacons (sendBeacon, text/plain fetch) are "simple" CORS requests: no preflight, but the
// response still needs the header for fetch() callers to read it.
const CORS = { 'access-control-allow-origin': '*' } as const;
const PREFLIGHT = {
  ...CORS,
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type, content-encoding, authorization',
  'access-control-max-age': '86400',
} as const;

/**
 * The edge collector as a Hono app, runtime-neutral (web-standard APIs only). Entries for
 * Node, Workers and Deno build the sinks and pass them in through `flusher`.
 *
 * Routes: `POST /v1/batch|track|page|screen|identify` (answered after the events are durable),
 * `POST /v1/collect` (browser beacon, answered at once with 202, CORS `*`), `GET /health`.
 * See docs/EDGE.md for status and error codes.
 *
 * @example
 * ```ts
 * const config = parseEdgeConfig({ TRIBUTARY_ENV: 'dev' });
 * if (!config.ok) throw new Error(config.errors.join('\n'));
 * const accumulator = createAccumulator(config.config);
 * const flusher = createFlusher({ ...config.config, sourceId: 'edge-1', accumulator, partialSink, rejectedSink, now: Date.now });
 * const app = createEdgeApp({ config: config.config, accumulator, flusher });
 * const res = await app.request('/v1/track', {
 *   method: 'POST',
 *   headers: { authorization: `Basic ${btoa('wk_demo:')}`, 'content-type': 'application/json' },
 *   body: JSON.stringify({ event: 'signup', userId: 'u1' }),
 * });
 * ```
 */
export function createEdgeApp(deps: EdgeDeps): Hono {
  const { config, flusher } = deps;
  const now = deps.now ?? Date.now;
  const country = deps.country ?? createCountryHook(config.countryHeader);
  const state =
    deps.ingestState ??
    createIngestState(
      config,
      deps.saltProvider ?? createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs, now }),
      deps.pseudonymMac ? { mac: deps.pseudonymMac } : {},
    );
  const ingest = createIngest({ config, accumulator: deps.accumulator, flusher, state });
  const log: EdgeLog = deps.log ?? (() => undefined);
  // Whole requests refused, per error code: no event of them reached the rejected topic.
  const refusedRequests: Partial<Record<EdgeErrorCode, number>> = {};

  async function handle(c: Context, route: IngestRoute): Promise<Response> {
    const beacon = route.kind === 'collect';
    const fail = (r: RequestRejection): Response => {
      refusedRequests[r.code] = (refusedRequests[r.code] ?? 0) + 1;
      return rejectionResponse(r, beacon ? CORS : {});
    };
    const request = c.req.raw;
    const receivedAtMs = now();

    if (flusher.overloaded()) {
      return fail(rejection(503, 'overloaded', 'the edge is buffering too many unsent events: retry after the Retry-After delay', { retryAfterS: flusher.retryAfterS }));
    }
    const headerKey = basicAuthUser(request.headers.get('authorization'));
    if (headerKey !== undefined) {
      // Refuse a wrong key before reading the body.
      const site = resolveSite(config.writeKeys, headerKey);
      if (site.kind === 'reject') return fail(site);
    }
    const body = await readBody(request, config.maxBodyBytes);
    if (body.kind === 'reject') return fail(body);
    const parsed = parseJsonBody(body.bytes);
    if (parsed.kind === 'reject') return fail(parsed);
    // Authenticate before validating, so a client with a wrong key learns that first.
    const bodyWriteKey = parsed.value !== null && typeof parsed.value === 'object' ? (parsed.value as { writeKey?: unknown }).writeKey : undefined;
    const site = resolveSite(config.writeKeys, headerKey ?? bodyWriteKey);
    if (site.kind === 'reject') return fail(site);
    const events = extractEvents(parsed.value, route, {
      maxEventsPerBatch: config.maxEventsPerBatch,
      maxEventBytes: config.maxEventBytes,
      bodyBytes: body.bytes.byteLength,
      batchElementBytes: parsed.arrayElementBytes.get('batch'),
    });
    if (events.kind === 'reject') return fail(events);

    const summary = await ingest(events, {
      site: site.site,
      receivedAtMs,
      country: country(request),
      // Only a beacon's User-Agent header is the browser's own (see EnrichContext).
      headerUserAgent: beacon ? (request.headers.get('user-agent') ?? undefined) : undefined,
    });
    if ('kind' in summary) {
      log({ event: 'salt_unavailable', site: site.site });
      return fail(rejection(503, 'salt_unavailable', summary.message, { retryAfterS: SALT_RETRY_AFTER_S }));
    }
    if (route.kind === 'single' && summary.rejected.length > 0) {
      const errors = summary.rejected[0]?.errors ?? [];
      return fail(rejection(400, 'invalid_event', `the event is invalid: ${errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`, { errors }));
    }
    const result = { ok: true, accepted: summary.accepted, duplicates: summary.duplicates, rejected: summary.rejected };
    if (beacon) return c.json(result, 202, CORS);

    // Group commit: answer only once the flush carrying these events is acknowledged.
    const committed = await flusher.commit();
    if (!committed.ok) {
      log({ event: 'request_not_committed', site: site.site, accepted: summary.accepted });
      return fail(
        rejection(503, 'sink_unavailable', 'the events could not be stored yet (the pipeline is unavailable): retry the same request after the Retry-After delay; messageIds already received are not counted twice', {
          retryAfterS: committed.retryAfterS,
        }),
      );
    }
    return c.json(result, 200);
  }

  const app = new Hono();
  app.post('/v1/batch', (c) => handle(c, { kind: 'batch' }));
  app.post('/v1/track', (c) => handle(c, { kind: 'single', type: 'track' }));
  app.post('/v1/page', (c) => handle(c, { kind: 'single', type: 'page' }));
  app.post('/v1/screen', (c) => handle(c, { kind: 'single', type: 'screen' }));
  app.post('/v1/identify', (c) => handle(c, { kind: 'single', type: 'identify' }));
  app.post('/v1/collect', (c) => handle(c, { kind: 'collect' }));
  app.options('/v1/collect', () => new Response(null, { status: 204, headers: PREFLIGHT }));
  // analytics.js (Segment's browser library) posts text/plain JSON with the writeKey in the body
  // to these short paths, cross-origin: same semantics as the long ones, plus CORS so the
  // library can read the answer instead of retrying blindly.
  const SHORT_PATHS: Array<[string, IngestRoute]> = [
    ['/v1/t', { kind: 'single', type: 'track' }],
    ['/v1/p', { kind: 'single', type: 'page' }],
    ['/v1/s', { kind: 'single', type: 'screen' }],
    ['/v1/i', { kind: 'single', type: 'identify' }],
    ['/v1/b', { kind: 'batch' }],
  ];
  for (const [path, route] of SHORT_PATHS) {
    app.post(path, async (c) => withCors(await handle(c, route)));
    app.options(path, () => new Response(null, { status: 204, headers: PREFLIGHT }));
  }
  app.get('/health', (c) => {
    const overloaded = flusher.overloaded();
    const counters: IngestCounters = ingest.counters();
    return c.json(
      { ok: !overloaded, ...flusher.stats(), dropped: counters.dropped, usersNotCounted: counters.usersNotCounted, refusedRequests: { ...refusedRequests } },
      overloaded ? 503 : 200,
    );
  });
  app.notFound(() =>
    rejectionResponse(rejection(404, 'not_found', 'no such endpoint: use POST /v1/batch, /v1/track, /v1/page, /v1/screen, /v1/identify (or the analytics.js short forms /v1/b, /v1/t, /v1/p, /v1/s, /v1/i), /v1/collect or GET /health')),
  );
  app.onError((err) => {
    log({ event: 'request_failed', error: err instanceof Error ? err.message : String(err) });
    return rejectionResponse(rejection(500, 'internal_error', 'the edge failed to handle the request: retry it; if it keeps failing, report it with the time of the request'));
  });
  return app;
}

function withCors(res: Response): Response {
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(CORS)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}
