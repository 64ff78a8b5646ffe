import { createBoundedCache } from '../bounded-cache.ts';
import { scrubText, type Scrub } from './scrub.ts';

/** Value recorded for a configured dimension the event does not carry. */
export const UNKNOWN = 'unknown';
export const MAX_PATH_CHARS = 512;

/** Where an event's page location comes from, as sent (any field may be missing). */
export interface PageLocation {
  /** `context.page.path`, else `properties.path`: may carry its own query string. */
  path?: string | undefined;
  /** `context.page.search` (`?a=b`), used when `path` has no query of its own. */
  search?: string | undefined;
  /** `context.page.url`, else `properties.url`: used when there is no `path`. */
  url?: string | undefined;
}

/**
 * Normalizes a page location into the `path` dimension:
 * - the fragment is dropped;
 * - the query string is dropped except the parameters in `allowlist` (campaign tags such as
 *   `utm_source`), kept in allowlist order, first value only, re-encoded canonically;
 * - duplicate slashes collapse, a trailing slash is removed (`/pricing/` = `/pricing`; `/` stays);
 * - the path keeps its case (paths are case-sensitive; hosts are not part of it);
 * - personal data and secret-looking segments are scrubbed (`/u/[email]`, `/reset/[secret]`;
 *   see {@link Scrub}), in the path and in each kept query value;
 * - at most {@link MAX_PATH_CHARS} characters; nothing usable gives `unknown`.
 *
 * Results are cached (bounded): the same few hundred paths make up most traffic.
 *
 * @example
 * ```ts
 * const normalize = createPathNormalizer({ allowlist: ['utm_source'] });
 * normalize({ path: '/Pricing/', search: '?utm_source=news&token=x' }); // '/Pricing?utm_source=news'
 * ```
 */
export function createPathNormalizer(o: { allowlist: readonly string[]; cacheSize?: number; scrub?: Scrub }): (loc: PageLocation) => string {
  const cache = createBoundedCache<string, string>(o.cacheSize ?? 10_000);
  const allow = o.allowlist;
  const scrub = o.scrub ?? scrubText;

  function compute(loc: PageLocation): string {
    let rawPath: string | undefined;
    let query = '';
    if (loc.path !== undefined) {
      const cut = cutAt(loc.path);
      rawPath = cut.path;
      query = cut.query ?? (loc.search !== undefined ? searchQuery(loc.search) : '');
    } else if (loc.url !== undefined) {
      const url = parseUrl(loc.url);
      if (url === undefined) return UNKNOWN;
      rawPath = url.pathname;
      query = url.search.slice(1);
    }
    if (rawPath === undefined) return UNKNOWN;
    let path = rawPath.trim().replace(/\/{2,}/g, '/');
    if (path === '') return UNKNOWN;
    if (!path.startsWith('/')) path = `/${path}`;
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const kept = allow.length > 0 && query !== '' ? keptQuery(query, allow, scrub) : '';
    return (scrub(path) + kept).slice(0, MAX_PATH_CHARS);
  }

  return (loc) => {
    if (loc.path === undefined && loc.url === undefined) return UNKNOWN;
    // Most events have a path and no query: the path itself is the key (no concatenation).
    // Without an allowlist the query never reaches the result, so it stays out of the key too.
    const key =
      loc.path !== undefined
        ? loc.search === undefined || loc.search === '' || allow.length === 0
          ? loc.path
          : `${loc.path}\u0000${loc.search}`
        : `\u0000\u0000${loc.url ?? ''}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const value = compute(loc);
    cache.set(key, value);
    return value;
  };
}

function cutAt(raw: string): { path: string; query: string | undefined } {
  const h = raw.indexOf('#');
  const noFragment = h >= 0 ? raw.slice(0, h) : raw;
  const q = noFragment.indexOf('?');
  return q >= 0 ? { path: noFragment.slice(0, q), query: noFragment.slice(q + 1) } : { path: noFragment, query: undefined };
}

function searchQuery(search: string): string {
  const h = search.indexOf('#');
  const s = h >= 0 ? search.slice(0, h) : search;
  return s.startsWith('?') ? s.slice(1) : s;
}

function keptQuery(query: string, allow: readonly string[], scrub: Scrub): string {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(query);
  } catch {
    return '';
  }
  const out = new URLSearchParams();
  for (const name of allow) {
    const v = params.get(name);
    // Scrubbed before the cut: a cut must not leave a partial card or address the scrubber misses.
    if (v !== null && v !== '') out.append(name, scrub(v.slice(0, 512)).slice(0, 128));
  }
  const s = out.toString();
  return s === '' ? '' : `?${s}`;
}

/** `new URL` or undefined: client-sent URLs are often relative or malformed. */
export function parseUrl(raw: string): URL | undefined {
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}
