import { createBoundedCache } from '../../shared/bounded-cache.ts';
import { parseUrl, UNKNOWN } from '../../shared/privacy/path.ts';
import { scrubText, type Scrub } from '../../shared/privacy/scrub.ts';

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
 * The referrer's domain is cached (bounded) per referrer; the page's host is read from its URL
 * without a full parse, so the cache key does not multiply by every page URL.
 *
 * @example
 * ```ts
 * const referrerDomain = createReferrerStep();
 * referrerDomain('https://www.google.com/', 'https://shop.example/'); // 'google.com'
 * referrerDomain('https://shop.example/a', 'https://www.shop.example/b'); // '(direct)'
 * ```
 */
export function createReferrerStep(o: { cacheSize?: number; scrub?: Scrub } = {}): (referrer: string | undefined, pageUrl: string | undefined) => string {
  const cache = createBoundedCache<string, string>(o.cacheSize ?? 10_000);
  return (referrer, pageUrl) => {
    if (referrer === undefined || referrer === '') return DIRECT;
    let domain = cache.get(referrer);
    if (domain === undefined) {
      domain = referrerDomain(referrer, o.scrub);
      cache.set(referrer, domain);
    }
    if (pageUrl !== undefined && domain.charCodeAt(0) !== 0x28 /* ( */ && domain === pageDomain(pageUrl)) return DIRECT;
    return domain;
  };
}

/** The domain of a referrer, before the own-site rule: `google.com`, `(ip)`, `(direct)` for blank, or `unknown`. */
export function referrerDomain(referrer: string, scrub: Scrub = scrubText): string {
  const trimmed = referrer.trim();
  if (trimmed === '') return DIRECT;
  const host = hostOf(trimmed);
  if (host === undefined) return UNKNOWN;
  if (isIpHost(host)) return IP_REFERRER;
  const domain = stripWww(host);
  if (domain === '') return UNKNOWN;
  return scrub(domain).slice(0, 253);
}

// scheme://[userinfo@]host[:port] — the authority of an absolute URL, read without a full parse.
const AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^/?#@]*@)?([^/?#:]*)/;
const PLAIN_HOST = /^[a-z0-9.-]+$/;

/** The page's own domain (`www.` removed), for the self-referral rule. */
function pageDomain(pageUrl: string): string | undefined {
  const m = AUTHORITY.exec(pageUrl);
  if (m === null) return undefined;
  const host = (m[1] as string).toLowerCase();
  if (PLAIN_HOST.test(host)) return stripWww(host.endsWith('.') ? host.slice(0, -1) : host);
  const parsed = hostOf(pageUrl); // non-ASCII hosts: let URL do the punycode
  return parsed === undefined ? undefined : stripWww(parsed);
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
