import { Hono } from 'hono';
import { toResponse } from './answer.ts';
import { trustedHeaderCountry, type CountryLookup } from './country.ts';
import type { BodyLimiter } from './body/body-limits.ts';
import { requestBodySource } from './body/read-body.ts';
import { allowedMethods, createIngestHttp, INGEST_ENDPOINTS, type IngestHttp, type IngestHttpDeps } from './http-ingest.ts';

export interface EdgeDeps extends IngestHttpDeps {
  /**
   * Country of the client from a trusted source, the runtime's {@link CountryLookup}. Default:
   * the `COUNTRY_HEADER` header when configured, else none (`unknown`): Node and Deno's. The
   * Workers entry passes `workersCountry` (`request.cf.country`).
   */
  country?: CountryLookup;
  /**
   * The HTTP semantics to serve (`createIngestHttp`). Default: built from these deps. Pass one
   * to share it (pipeline state, counters) with another adapter, as the Node entry does.
   */
  http?: IngestHttp;
  /**
   * Body timeout and in-flight caps (`createBodyLimiter`), for runtimes that do not bound slow
   * uploads themselves: the Deno entry passes one. Default: none (Node enforces them in
   * node:http terms, Workers leave them to the platform).
   */
  bodyLimiter?: BodyLimiter;
}

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
 * const flusher = createFlusher({ ...config.config, sourceId: 'edge-1', accumulator, sink, now: Date.now });
 * const app = createEdgeApp({ config: config.config, accumulator, flusher });
 * const res = await app.request('/v1/track', {
 *   method: 'POST',
 *   headers: { authorization: `Basic ${btoa('wk_demo:')}`, 'content-type': 'application/json' },
 *   body: JSON.stringify({ event: 'signup', userId: 'u1' }),
 * });
 * ```
 */
/** Request headers allowed (names, values and separators), as node:http's default `maxHeaderSize`. */
export const MAX_HEADER_BYTES = 16 * 1024;

function headerBytes(headers: Headers): number {
  let n = 0;
  for (const [name, value] of headers) n += name.length + value.length + 4;
  return n;
}

export function createEdgeApp(deps: EdgeDeps): Hono {
  const http = deps.http ?? createIngestHttp(deps);
  const country = deps.country ?? trustedHeaderCountry(deps.config.countryHeader);
  const limiter = deps.bodyLimiter;

  const app = new Hono();
  // Node's HTTP parser refuses more than 16 KiB of headers (431); Deno's and workerd's allow
  // more. The same limit here keeps the answer the same on every runtime.
  app.use(async (c, next) => {
    if (headerBytes(c.req.raw.headers) > MAX_HEADER_BYTES) return toResponse(http.headerTooLarge());
    await next();
  });
  for (const [path, endpoint] of INGEST_ENDPOINTS) {
    app.post(path, async (c) => {
      const request = c.req.raw;
      if (limiter === undefined) return toResponse(await http.ingest(endpoint, { headers: request.headers, body: requestBodySource(request), country: country(request) }));
      const body = limiter.body(request);
      try {
        return toResponse(await http.ingest(endpoint, { headers: request.headers, body, country: country(request) }));
      } finally {
        body.release();
      }
    });
    if (endpoint.cors) app.options(path, () => toResponse(http.preflight()));
    // Registered last: only the methods the path does not serve get here.
    app.all(path, () => toResponse(http.methodNotAllowed(allowedMethods(endpoint), endpoint.cors)));
  }
  app.get('/health', () => toResponse(http.health()));
  app.all('/health', () => toResponse(http.methodNotAllowed('GET', false)));
  app.notFound(() => toResponse(http.notFound()));
  app.onError((err) => toResponse(http.internalError(err)));
  return app;
}
