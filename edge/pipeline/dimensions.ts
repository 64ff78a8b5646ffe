import type { BotPolicy, DimensionName } from '../config.ts';
import type { EventContext, SegmentEvent } from '../../schemas/validators.ts';
import { normalizeCountry } from './country.ts';
import { createPathNormalizer, type PageLocation } from '../../shared/privacy/path.ts';
import { createReferrerStep } from './referrer.ts';
import { scrubText, type Scrub } from '../../shared/privacy/scrub.ts';
import { drop, ok, type StepResult } from './step-result.ts';
import { createUserAgentParser, NO_USER_AGENT, type UserAgentInfo } from './user-agent.ts';

export { UNKNOWN } from '../../shared/privacy/path.ts';
export { normalizeCountry } from './country.ts';

/** What the request adds to its events: trusted values from the platform, never from the body. */
export interface EnrichContext {
  /** Context of the batch envelope: defaults for events without their own. */
  batchContext?: EventContext | undefined;
  /** From a trusted source (proxy header, `request.cf.country`). */
  country?: string | undefined;
  /**
   * The request's `User-Agent` header, passed only for browser beacons (`/v1/collect`), where
   * it is the browser's own. On the Segment endpoints it is the SDK's (`analytics-node`,
   * `axios`, ...) and would mark every server-side event as a bot.
   */
  headerUserAgent?: string | undefined;
}

/**
 * An event's dimension values, `[name, value]` sorted by name (the envelope's order). The pairs
 * are shared between events (interned): replace a pair, never mutate one.
 */
export type Dimensions = Array<[string, string]>;

export interface EnrichOptions {
  dimensions: readonly DimensionName[];
  botPolicy: BotPolicy;
  pathQueryAllowlist: readonly string[];
  /** Entries per enrichment cache (user agents, paths, referrers). Default 10 000. */
  cacheSize?: number;
  /** The scrubber of paths, kept query values and referrer domains (`PATH_SECRET_PATTERNS`). Default: {@link scrubText}. */
  scrub?: Scrub;
}

export interface EnrichStep {
  (event: SegmentEvent, ctx: EnrichContext): StepResult<Dimensions>;
  /** The user-agent cache, for tests and stats. */
  readonly userAgentCacheSize: number;
}

/**
 * Enrichment: the configured dimensions of one event, and the bot policy.
 * - `path`: see {@link createPathNormalizer}; `referrer_domain`: see {@link createReferrerStep};
 * - `device`, `browser`, `os`, `is_bot` (`true`/`false`): from `context.userAgent` (event, else
 *   batch), else the beacon's `User-Agent` header; see {@link createUserAgentParser};
 * - `country`: only from the trusted source in `ctx`.
 * With `botPolicy: 'drop'` a bot's event is `drop('bot')`: valid, acknowledged, not aggregated.
 *
 * @example
 * ```ts
 * const enrich = createEnrichStep({ dimensions: ['browser', 'path'], botPolicy: 'drop', pathQueryAllowlist: [] });
 * enrich(event, { country: 'DE' }); // ok([['browser', 'Firefox'], ['path', '/pricing']]) or drop('bot')
 * ```
 */
export function createEnrichStep(o: EnrichOptions): EnrichStep {
  const names = [...o.dimensions].sort();
  const cacheSize = o.cacheSize ?? 10_000;
  const parseUserAgent = createUserAgentParser({ cacheSize });
  const normalizePath = createPathNormalizer({ allowlist: o.pathQueryAllowlist, cacheSize, ...(o.scrub ? { scrub: o.scrub } : {}) });
  const referrerDomain = createReferrerStep({ cacheSize, ...(o.scrub ? { scrub: o.scrub } : {}) });
  const needsUserAgent = o.botPolicy === 'drop' || names.some((n) => n === 'device' || n === 'browser' || n === 'os' || n === 'is_bot');
  // One [name, value] pair per distinct value, shared by every event that has it: fewer
  // allocations per event on the hot path. Bounded like the caches.
  const pairs = new Map<string, Map<string, [string, string]>>(names.map((n) => [n, new Map()]));
  const pair = (name: DimensionName, value: string): [string, string] => {
    const byValue = pairs.get(name) as Map<string, [string, string]>;
    let p = byValue.get(value);
    if (p === undefined) {
      p = [name, storedText(value)];
      if (byValue.size < cacheSize) byValue.set(value, p);
    }
    return p;
  };

  const step = ((event: SegmentEvent, ctx: EnrichContext): StepResult<Dimensions> => {
    const ua: UserAgentInfo = needsUserAgent ? parseUserAgent(event.context?.userAgent ?? ctx.batchContext?.userAgent ?? ctx.headerUserAgent) : NO_USER_AGENT;
    if (ua.isBot && o.botPolicy === 'drop') return drop('bot');
    const out: Dimensions = [];
    for (const name of names) {
      switch (name) {
        case 'path':
          out.push(pair(name, normalizePath(pageLocation(event, ctx.batchContext))));
          break;
        case 'country':
          out.push(pair(name, normalizeCountry(ctx.country)));
          break;
        case 'device':
          out.push(pair(name, ua.device));
          break;
        case 'browser':
          out.push(pair(name, ua.browser));
          break;
        case 'os':
          out.push(pair(name, ua.os));
          break;
        case 'is_bot':
          out.push(pair(name, ua.isBot ? 'true' : 'false'));
          break;
        case 'referrer_domain': {
          const page = event.context?.page ?? ctx.batchContext?.page;
          out.push(pair(name, referrerDomain(page?.referrer ?? stringProperty(event, 'referrer'), page?.url ?? stringProperty(event, 'url'))));
          break;
        }
      }
    }
    return ok(out);
  }) as EnrichStep;
  Object.defineProperty(step, 'userAgentCacheSize', { get: () => parseUserAgent.cacheSize });
  return step;
}

/** The event name rows are counted under: track's `event` (scrubbed), else `$page`, `$screen`, `$identify`. */
export function eventName(e: SegmentEvent, scrub: Scrub = scrubText): string {
  return e.type === 'track' ? storedText(scrub(e.event)) : TYPE_EVENT_NAMES[e.type];
}

/**
 * Control characters (C0, DEL, C1) and bidirectional overrides in a value that is stored and
 * shown (dimension values, event names), each replaced by U+FFFD. They have no place in a path
 * or a name, and a terminal, a CSV export or a log line would act on them. Markup (`<`, `&`,
 * quotes) is kept as sent: escaping it is the job of whatever displays the value (docs/EDGE.md).
 */
export function storedText(value: string): string {
  return UNSAFE_TEXT.test(value) ? value.replace(UNSAFE_TEXT_ALL, '\ufffd') : value;
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_TEXT_ALL = new RegExp(UNSAFE_TEXT.source, 'g');

// Constants, not `$${type}` per event: one string object whose hash V8 computes once.
const TYPE_EVENT_NAMES = { page: '$page', screen: '$screen', identify: '$identify' } as const;

/**
 * The numeric value an event contributes to sum/min/max/quantiles: `properties.value`, else
 * `properties.revenue`, when it is a finite number.
 */
export function numericValue(e: SegmentEvent): number | undefined {
  if (e.type === 'identify' || e.properties === undefined) return undefined;
  for (const field of ['value', 'revenue'] as const) {
    const v = e.properties[field];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/** `context.page` (event, else batch), else the page fields analytics.js also puts in `properties`. */
function pageLocation(e: SegmentEvent, batchContext: EventContext | undefined): PageLocation {
  const page = e.context?.page ?? batchContext?.page;
  return {
    path: page?.path ?? stringProperty(e, 'path'),
    search: page?.search ?? stringProperty(e, 'search'),
    url: page?.url ?? stringProperty(e, 'url'),
  };
}

function stringProperty(e: SegmentEvent, name: string): string | undefined {
  if (e.type === 'identify') return undefined;
  const v = e.properties?.[name];
  return typeof v === 'string' ? v : undefined;
}

const plainPath = createPathNormalizer({ allowlist: [], cacheSize: 1000 });

/** A path with query string and fragment removed (what rejected events keep of `context.page.path`). */
export function normalizePath(raw: string): string {
  return plainPath({ path: raw });
}
