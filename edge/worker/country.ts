import { countryFromHeader, type CountryLookup } from '../country.ts';

/**
 * Cloudflare Workers' {@link CountryLookup}: `request.cf.country`, which the platform fills from
 * the client's IP (clients cannot set `request.cf`); a configured `COUNTRY_HEADER` still wins.
 *
 * @example
 * ```ts
 * createEdgeApp({ config, accumulator, flusher, country: workersCountry(config.countryHeader) });
 * ```
 */
export function workersCountry(countryHeader: string | undefined): CountryLookup {
  if (countryHeader !== undefined) return (request) => countryFromHeader(request.headers, countryHeader);
  return countryFromCf;
}

function countryFromCf(request: Request): string | undefined {
  const country = (request as Request & { cf?: { country?: unknown } }).cf?.country;
  return typeof country === 'string' ? country : undefined;
}
