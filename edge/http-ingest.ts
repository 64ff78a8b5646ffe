import type { Accumulator } from './accumulator.ts';
import { jsonAnswer, jsonHeaders, type EdgeAnswer } from './answer.ts';
import { parseJsonBody } from './body/parse-json.ts';
import { readBodySource, type BodySource } from './body/read-body.ts';
import type { EdgeConfig } from './config.ts';
import { rejection, rejectionAnswer, type EdgeErrorCode, type RequestRejection } from './errors.ts';
import type { Flusher } from './flusher.ts';
import { createIngest, createIngestState, type IngestCounters, type IngestState, type IngestSummary } from './ingest.ts';
import type { Deduplicator } from './pipeline/dedup.ts';
import type { EdgeLog } from './ports.ts';
import { extractEvents, type IngestRoute } from './request-events.ts';
import { createStaticSaltProvider, type MacFactory, type SaltProvider } from '../shared/salts.ts';
import { basicAuthUser, resolveSite } from './write-key.ts';
import { errorMessage } from '../shared/errors.ts';

/** Header lookup by name, case-insensitive: a web `Headers` is one; the Node fast path has its own. */
export interface HeaderLookup {
  get(name: string): string | null;
}

/** An ingest path: what it accepts and whether every answer carries CORS headers. */
export interface IngestEndpoint {
  route: IngestRoute;
  /** Browser callers (beacons, analytics.js): CORS `*` on every answer, and an OPTIONS preflight. */
  cors: boolean;
}

const batch: IngestRoute = { kind: 'batch' };
const single = (type: 'track' | 'page' | 'screen' | 'identify'): IngestRoute => ({ kind: 'single', type });

/**
 * Every ingest path, for every adapter: the Hono app registers these, the Node fast path looks
 * requests up here. `/v1/collect` is the browser beacon; `/v1/b|t|p|s|i` are the short forms
 * analytics.js (Segment's browser library) posts to, text/plain with the writeKey in the body,
 * cross-origin: same semantics as the long ones, plus CORS so the library can read the answer
 * instead of retrying blindly.
 */
export const INGEST_ENDPOINTS: ReadonlyMap<string, IngestEndpoint> = new Map([
  ['/v1/batch', { route: batch, cors: false }],
  ['/v1/track', { route: single('track'), cors: false }],
  ['/v1/page', { route: single('page'), cors: false }],
  ['/v1/screen', { route: single('screen'), cors: false }],
  ['/v1/identify', { route: single('identify'), cors: false }],
  ['/v1/collect', { route: { kind: 'collect' }, cors: true }],
  ['/v1/t', { route: single('track'), cors: true }],
  ['/v1/p', { route: single('page'), cors: true }],
  ['/v1/s', { route: single('screen'), cors: true }],
  ['/v1/i', { route: single('identify'), cors: true }],
  ['/v1/b', { route: batch, cors: true }],
]);

/** One ingest request as an adapter hands it over. */
export interface IngestHttpRequest {
  headers: HeaderLookup;
  body: BodySource;
  /** From a trusted source (proxy header, platform), never from the body. */
  country: string | undefined;
}

/** The edge's HTTP behaviour as plain functions; see {@link createIngestHttp}. */
export interface IngestHttp {
  /** `POST` to an ingest path. Never rejects for bad input: every refusal is an answer. */
  ingest(endpoint: IngestEndpoint, request: IngestHttpRequest): Promise<EdgeAnswer>;
  /** `OPTIONS` on a CORS path. */
  preflight(): EdgeAnswer;
  /** `GET /health`. */
  health(): EdgeAnswer;
  notFound(): EdgeAnswer;
  /** Headers over the limit (node:http's parser answers this itself, see edge/node/http-listener.ts). */
  headerTooLarge(): EdgeAnswer;
  /** A known path with a method it does not serve: 405 with `Allow` (`allow`: e.g. `POST, OPTIONS`). */
  methodNotAllowed(allow: string, cors: boolean): EdgeAnswer;
  /** A bug escaped a handler: logs it and answers 500. */
  internalError(error: unknown): EdgeAnswer;
}

export interface IngestHttpDeps {
  config: EdgeConfig;
  /** Where accepted events are aggregated; drained by `flusher`. */
  accumulator: Accumulator;
  /** Group commit: synchronous endpoints answer after the flush carrying their events is acknowledged. */
  flusher: Flusher;
  /** Clock (epoch ms). Default `Date.now`. */
  now?: () => number;
  /** Epoch salts for pseudonyms. Default: derived from `PSEUDONYM_SALT` (`createStaticSaltProvider`). */
  saltProvider?: SaltProvider;
  /** HMAC-SHA-256 for pseudonyms. Default `crypto.subtle`; the Node entry passes node:crypto's synchronous one. */
  pseudonymMac?: MacFactory;
  /**
   * Caches, dedup set and counters of the pipeline (`createIngestState`). Default: a new one.
   * Entries that build the app per request (Workers) pass one kept per isolate.
   */
  ingestState?: IngestState;
  /** Retry deduplication for the default ingest state (ignored with `ingestState`). */
  dedup?: Deduplicator;
  log?: EdgeLog;
}

/** The `Allow` header of an ingest path: what it answers (405 for anything else). */
export function allowedMethods(endpoint: IngestEndpoint): string {
  return endpoint.cors ? 'POST, OPTIONS' : 'POST';
}

/** `431 header_too_large`, the same from node:http's parser and from the app. */
export const HEADER_TOO_LARGE = rejection(431, 'header_too_large', 'the request line and headers exceed 16 KiB: send fewer or shorter headers (cookies are not needed by the edge)');

/** Seconds a client waits after `503 salt_unavailable`. */
const SALT_RETRY_AFTER_S = 5;

// Beacons (sendBeacon, text/plain fetch) are "simple" CORS requests: no preflight, but the
// response still needs the header for fetch() callers to read it. analytics.js
// (@segment/analytics-next) sends `Authorization` and, on a retry, `X-Retry-Count`: both need a
// preflight, and a header missing here makes the browser block the retry for good.
const CORS = Object.freeze({ 'access-control-allow-origin': '*' });
const NO_HEADERS = Object.freeze({});
const JSON_CORS = jsonHeaders(CORS);
const JSON_PLAIN = jsonHeaders();
const PREFLIGHT: EdgeAnswer = Object.freeze({
  status: 204,
  headers: Object.freeze({
    ...CORS,
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'content-type, content-encoding, authorization, x-retry-count',
    'access-control-max-age': '86400',
  }),
  body: null,
});

/** `{ ok, accepted, duplicates, rejected }` as JSON; spelled out when nothing was rejected (most answers), as JSON.stringify would. */
function successBody(s: IngestSummary): string {
  if (s.rejected.length === 0) return `{"ok":true,"accepted":${s.accepted},"duplicates":${s.duplicates},"rejected":[]}`;
  return JSON.stringify({ ok: true, accepted: s.accepted, duplicates: s.duplicates, rejected: s.rejected });
}

/**
 * The edge's HTTP semantics, runtime-neutral and free of any server framework: authentication,
 * body limits, parsing, validation, the pipeline, group commit, and every status code, error
 * body and CORS header. The Hono app (edge/app.ts) and the Node fast path
 * (edge/node/http-listener.ts) are thin adapters over one instance of it, so the two cannot
 * drift apart. See docs/EDGE.md for the answers.
 *
 * @example
 * ```ts
 * const http = createIngestHttp({ config, accumulator, flusher });
 * const answer = await http.ingest(INGEST_ENDPOINTS.get('/v1/track')!, { headers: request.headers, body: requestBodySource(request), country: undefined });
 * ```
 */
export function createIngestHttp(deps: IngestHttpDeps): IngestHttp {
  const { config, flusher } = deps;
  const now = deps.now ?? Date.now;
  const state =
    deps.ingestState ??
    createIngestState(
      config,
      deps.saltProvider ?? createStaticSaltProvider({ secret: config.pseudonymSalt, epochMs: config.saltEpochMs, retentionEpochs: config.saltRetentionEpochs, now }),
      { ...(deps.pseudonymMac ? { mac: deps.pseudonymMac } : {}), ...(deps.dedup ? { dedup: deps.dedup } : {}) },
    );
  const ingest = createIngest({ config, accumulator: deps.accumulator, flusher, state });
  const log: EdgeLog = deps.log ?? (() => undefined);
  // Whole requests refused, per error code: no event of them reached the rejected topic.
  const refusedRequests: Partial<Record<EdgeErrorCode, number>> = {};
  const limits = { maxEventsPerBatch: config.maxEventsPerBatch, maxEventBytes: config.maxEventBytes };

  function refuse(r: RequestRejection, cors: boolean): EdgeAnswer {
    refusedRequests[r.code] = (refusedRequests[r.code] ?? 0) + 1;
    return rejectionAnswer(r, cors ? CORS : NO_HEADERS);
  }

  async function handle(endpoint: IngestEndpoint, request: IngestHttpRequest): Promise<EdgeAnswer> {
    const { route, cors } = endpoint;
    const beacon = route.kind === 'collect';
    const receivedAtMs = now();

    if (flusher.overloaded()) {
      return refuse(rejection(503, 'overloaded', 'the edge is buffering too many unsent events: retry after the Retry-After delay', { retryAfterS: flusher.retryAfterS }), cors);
    }
    const headerKey = basicAuthUser(request.headers.get('authorization'));
    if (headerKey !== undefined) {
      // Refuse a wrong key before reading the body.
      const site = resolveSite(config.writeKeys, headerKey);
      if (site.kind === 'reject') return refuse(site, cors);
    }
    const body = await readBodySource(request.body, config.maxBodyBytes);
    if (body.kind === 'reject') return refuse(body, cors);
    const parsed = parseJsonBody(body.bytes);
    if (parsed.kind === 'reject') return refuse(parsed, cors);
    // Authenticate before validating, so a client with a wrong key learns that first.
    const bodyWriteKey = parsed.value !== null && typeof parsed.value === 'object' ? (parsed.value as { writeKey?: unknown }).writeKey : undefined;
    const site = resolveSite(config.writeKeys, headerKey ?? bodyWriteKey);
    if (site.kind === 'reject') return refuse(site, cors);
    const events = extractEvents(parsed.value, route, {
      ...limits,
      bodyBytes: body.bytes.byteLength,
      batchElementBytes: parsed.arrayElementBytes.get('batch'),
    });
    if (events.kind === 'reject') return refuse(events, cors);

    const summary = await ingest(events, {
      site: site.site,
      receivedAtMs,
      country: request.country,
      // Only a beacon's User-Agent header is the browser's own (see EnrichContext).
      headerUserAgent: beacon ? (request.headers.get('user-agent') ?? undefined) : undefined,
    });
    if ('kind' in summary) {
      if (summary.reason === 'in_flight') {
        log({ event: 'retry_in_flight', site: site.site });
        return refuse(rejection(503, 'in_flight', summary.message, { retryAfterS: flusher.retryAfterS }), cors);
      }
      if (summary.reason === 'dedup_unavailable') {
        return refuse(rejection(503, 'dedup_unavailable', summary.message, { retryAfterS: 1 }), cors);
      }
      log({ event: 'salt_unavailable', site: site.site });
      return refuse(rejection(503, 'salt_unavailable', summary.message, { retryAfterS: SALT_RETRY_AFTER_S }), cors);
    }
    if (route.kind === 'single' && summary.rejected.length > 0) {
      const errors = summary.rejected[0]?.errors ?? [];
      return refuse(rejection(400, 'invalid_event', `the event is invalid: ${errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`, { errors }), cors);
    }
    if (beacon) return { status: 202, headers: JSON_CORS, body: successBody(summary) };

    // Group commit: answer only once the flush carrying these events is acknowledged.
    const committed = await flusher.commit();
    if (!committed.ok) {
      log({ event: 'request_not_committed', site: site.site, accepted: summary.accepted });
      return refuse(
        rejection(503, 'sink_unavailable', 'the events could not be stored yet (the pipeline is unavailable): retry the same request after the Retry-After delay; messageIds already received are not counted twice', {
          retryAfterS: committed.retryAfterS,
        }),
        cors,
      );
    }
    // Workers: the shards found these already stored (the isolate does not deduplicate).
    if (committed.duplicates !== undefined) summary.duplicates += committed.duplicates;
    return { status: 200, headers: cors ? JSON_CORS : JSON_PLAIN, body: successBody(summary) };
  }

  return {
    ingest: handle,
    preflight: () => PREFLIGHT,
    health() {
      const overloaded = flusher.overloaded();
      const counters: IngestCounters = ingest.counters();
      return jsonAnswer(overloaded ? 503 : 200, {
        ok: !overloaded,
        ...flusher.stats(),
        dropped: counters.dropped,
        usersNotCounted: counters.usersNotCounted,
        refusedRequests: { ...refusedRequests },
      });
    },
    notFound: () =>
      rejectionAnswer(
        rejection(404, 'not_found', 'no such endpoint: use POST /v1/batch, /v1/track, /v1/page, /v1/screen, /v1/identify (or the analytics.js short forms /v1/b, /v1/t, /v1/p, /v1/s, /v1/i), /v1/collect or GET /health'),
      ),
    headerTooLarge: () => rejectionAnswer(HEADER_TOO_LARGE),
    methodNotAllowed: (allow, cors) =>
      rejectionAnswer(rejection(405, 'method_not_allowed', `this path answers only ${allow}: send the events with POST`), { ...(cors ? CORS : NO_HEADERS), allow }),
    internalError(error) {
      log({ event: 'request_failed', error: errorMessage(error) });
      return rejectionAnswer(rejection(500, 'internal_error', 'the edge failed to handle the request: retry it; if it keeps failing, report it with the time of the request'));
    },
  };
}
