import { createBoundedCache } from './bounded-cache.ts';
import { parseUrl, UNKNOWN } from './path.ts';
import { scrubText } from './scrub.ts';

/** No referrer, or a referrer on the site itself. */
export const DIRECT = '(direct)';
/** The referrer's host is an IP address: never forwarded. */
export const IP_REFERRER = '(ip)';

/**
 * The `referrer_domain` dimension from `context.page.referrer`:
 * - the host only (no scheme, port, path or query), lower-cased, a leading `www.` and a
 *   trailing dot removed: `https://WWW.Google.com/search?q=x` -> `google.com`;
 * - `(direct)` when there is no referrer, or when it is the page's own host (internal
 *   navigation and reloads are not a traffic source; this is what GA and Plausible do with
 *   self-referrals);
 * - `(ip)` for an IP-address host (raw IPs never leave the edge); `unknown` for a value
 *   without a usable host.
 *
 * Cached (bounded) by (referrer, page URL).
 *
 * @example
 * ```ts
 * const referrerDomain = createReferrerStep();
 * referrerDomain('https://www.google.com/', 'https://shop.example/'); // 'google.com'
 * referrerDomain('https://shop.example/a', 'https://www.shop.example/b'); // '(direct)'
 * ```
 */
export function createReferrerStep(o: { cacheSize?: number } = {}): (referrer: string | undefined, pageUrl: string | undefined) => string {
  const cache = createBoundedCache<string, string>(o.cacheSize ?? 10_000);
  return (referrer, pageUrl) => {
    if (referrer === undefined || referrer.trim() === '') return DIRECT;
    const key = `${referrer}\u0000${pageUrl ?? ''}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const value = referrerDomain(referrer, pageUrl);
    cache.set(key, value);
    return value;
  };
}

export function referrerDomain(referrer: string, pageUrl: string | undefined): string {
  const host = hostOf(referrer.trim());
  if (host === undefined) return UNKNOWN;
  if (isIpHost(host)) return IP_REFERRER;
  const domain = stripWww(host);
  if (domain === '') return UNKNOWN;
  const own = pageUrl === undefined ? undefined : hostOf(pageUrl.trim());
  if (own !== undefined && stripWww(own) === domain) return DIRECT;
  return scrubText(domain).slice(0, 253);
}

/** Lower-cased host of an absolute URL (`scheme://host`), or of a bare `host/path`. */
function hostOf(raw: string): string | undefined {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw) ? raw : `http://${raw}`;
  const url = parseUrl(withScheme);
  if (url === undefined || url.hostname === '') return undefined;
  return url.hostname.toLowerCase().replace(/\.$/, '');
}

function stripWww(host: string): string {
  return host.startsWith('www.') ? host.slice(4) : host;
}

function isIpHost(host: string): boolean {
  return host.startsWith('[') || /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || /^0x[0-9a-f]+$|^\d+$/.test(host);
}
