import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';
import { createBoundedCache } from '../../shared/bounded-cache.ts';
import { UNKNOWN } from '../../shared/privacy/path.ts';

/** What the edge derives from a user agent. Names only, never versions: bounded cardinality. */
export interface UserAgentInfo {
  /** `desktop`, `mobile`, `tablet`, `smarttv`, `console`, `wearable`, `embedded`, `bot`, or `unknown` without a user agent. */
  device: string;
  /** Browser family as ua-parser-js names it (`Chrome`, `Mobile Safari`, `Firefox`, ...), or `unknown`. */
  browser: string;
  /** Operating system family (`Windows`, `Mac OS`, `iOS`, `Android`, `Linux`, ...), or `unknown`. */
  os: string;
  /** isbot's verdict; false without a user agent (no evidence either way). */
  isBot: boolean;
}

export const NO_USER_AGENT: UserAgentInfo = Object.freeze({ device: UNKNOWN, browser: UNKNOWN, os: UNKNOWN, isBot: false });

/** Longer user agents are cut before parsing and caching (the schema allows 1024 characters; headers have no limit). */
const MAX_UA_CHARS = 1024;

export interface UserAgentParser {
  (userAgent: string | undefined): UserAgentInfo;
  /** Entries cached now (at most the configured size). */
  readonly cacheSize: number;
}

/**
 * Device type, browser and OS from a user agent (ua-parser-js 1.0.x, the MIT-licensed line: v2
 * is AGPL-3.0) and bot detection (isbot). Parsing costs tens of microseconds and a site's
 * traffic repeats a few hundred user agents, so results are cached in a bounded map.
 *
 * @example
 * ```ts
 * const parseUserAgent = createUserAgentParser({ cacheSize: 10_000 });
 * parseUserAgent('Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) ... Mobile/15E148 Safari/604.1');
 * // { device: 'mobile', browser: 'Mobile Safari', os: 'iOS', isBot: false }
 * ```
 */
export function createUserAgentParser(o: { cacheSize?: number } = {}): UserAgentParser {
  const cache = createBoundedCache<string, UserAgentInfo>(o.cacheSize ?? 10_000);
  const parser = new UAParser();

  function compute(ua: string): UserAgentInfo {
    parser.setUA(ua);
    const bot = isbot(ua);
    const type = parser.getDevice().type;
    return Object.freeze({
      device: bot ? 'bot' : (type ?? 'desktop'),
      browser: parser.getBrowser().name ?? UNKNOWN,
      os: parser.getOS().name ?? UNKNOWN,
      isBot: bot,
    });
  }

  const parse = ((userAgent: string | undefined): UserAgentInfo => {
    if (userAgent === undefined) return NO_USER_AGENT;
    const ua = userAgent.length > MAX_UA_CHARS ? userAgent.slice(0, MAX_UA_CHARS) : userAgent;
    if (ua.trim() === '') return NO_USER_AGENT;
    const hit = cache.get(ua);
    if (hit !== undefined) return hit;
    const info = compute(ua);
    cache.set(ua, info);
    return info;
  }) as UserAgentParser;
  Object.defineProperty(parse, 'cacheSize', { get: () => cache.size });
  return parse;
}
