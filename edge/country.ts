import type { HeaderLookup } from './http-ingest.ts';

/**
 * The client's country from a trusted source: a runtime hook, as Hono's `getConnInfo` (one
 * implementation per runtime, the app takes whichever the entry passes). Never from the body.
 * Implementations: {@link trustedHeaderCountry} (Node, Deno: the default) and
 * `workersCountry` (edge/worker/country.ts: `request.cf.country`).
 */
export type CountryLookup = (request: Request) => string | undefined;

/**
 * Node and Deno: the `COUNTRY_HEADER` header set by a trusted proxy in front of the edge; none
 * when it is not configured (these runtimes know nothing of the client's location).
 *
 * @example
 * ```ts
 * createEdgeApp({ config, accumulator, flusher, country: trustedHeaderCountry(config.countryHeader) });
 * ```
 */
export function trustedHeaderCountry(countryHeader: string | undefined): CountryLookup {
  if (countryHeader === undefined) return () => undefined;
  return (request) => countryFromHeader(request.headers, countryHeader);
}

/** The `COUNTRY_HEADER` value from any header lookup (a `Headers`, or the Node fast path's). */
export function countryFromHeader(headers: HeaderLookup, countryHeader: string): string | undefined {
  return headers.get(countryHeader) ?? undefined;
}
