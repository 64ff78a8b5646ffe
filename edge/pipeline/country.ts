import { UNKNOWN } from './path.ts';

/**
 * The client's country as Cloudflare Workers report it (`request.cf.country`). The Workers
 * entry passes this as the edge's `country` hook; on other runtimes `cf` is absent and the
 * result is undefined. Clients cannot set `request.cf`: the platform fills it from the IP.
 *
 * @example
 * ```ts
 * createEdge({ config, sourceId, partialSink, rejectedSink, country: countryFromCf });
 * ```
 */
export function countryFromCf(request: Request): string | undefined {
  const cf = (request as Request & { cf?: { country?: unknown } }).cf;
  return typeof cf?.country === 'string' ? cf.country : undefined;
}

/**
 * The default country hook: the `COUNTRY_HEADER` header set by a trusted proxy when one is
 * configured, else `request.cf.country` (Workers), else none.
 */
export function createCountryHook(countryHeader: string | undefined): (request: Request) => string | undefined {
  return (request) => {
    if (countryHeader !== undefined) return countryFromHeader(request.headers, countryHeader);
    return countryFromCf(request);
  };
}

/** The `COUNTRY_HEADER` value from any header lookup (a `Headers`, or the Node fast path's). */
export function countryFromHeader(headers: { get(name: string): string | null }, countryHeader: string): string | undefined {
  return headers.get(countryHeader) ?? undefined;
}

/** ISO 3166-1 alpha-2 codes (plus platform codes such as Cloudflare's XX/T1), upper-cased. */
export function normalizeCountry(raw: string | undefined): string {
  if (raw === undefined) return UNKNOWN;
  const v = raw.trim().toUpperCase();
  return /^[A-Z0-9]{2}$/.test(v) ? v : UNKNOWN;
}
