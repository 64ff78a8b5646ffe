import { describe, expect, it } from 'vitest';
import { createBoundedCache } from '../../../shared/bounded-cache.ts';
import { trustedHeaderCountry } from '../../../edge/country.ts';
import { createEnrichStep, eventName } from '../../../edge/pipeline/dimensions.ts';
import { createPathNormalizer, type PageLocation } from '../../../shared/privacy/path.ts';
import { createReferrerStep } from '../../../edge/pipeline/referrer.ts';
import { scrubText } from '../../../shared/privacy/scrub.ts';
import { drop, ok } from '../../../edge/pipeline/step-result.ts';
import { createUserAgentParser } from '../../../edge/pipeline/user-agent.ts';
import { workersCountry } from '../../../edge/worker/country.ts';
import type { SegmentEvent } from '../../../schemas/validators.ts';
import { json, makeEdge, send, sentRows, track as trackEvent } from './helpers.ts';

const UA = {
  chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  chromeAndroid: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  safariIpad: 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  headless: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36',
  curl: 'curl/8.5.0',
};

const track = (over: Partial<SegmentEvent> = {}): SegmentEvent => ({ type: 'track', event: 'e', userId: 'u', ...over }) as SegmentEvent;

describe('user agent step', () => {
  it.each([
    [UA.chromeWindows, { device: 'desktop', browser: 'Chrome', os: 'Windows', isBot: false }],
    [UA.safariMac, { device: 'desktop', browser: 'Safari', os: 'Mac OS', isBot: false }],
    [UA.safariIphone, { device: 'mobile', browser: 'Mobile Safari', os: 'iOS', isBot: false }],
    [UA.chromeAndroid, { device: 'mobile', browser: 'Chrome', os: 'Android', isBot: false }],
    [UA.safariIpad, { device: 'tablet', browser: 'Mobile Safari', os: 'iOS', isBot: false }],
    [UA.firefoxLinux, { device: 'desktop', browser: 'Firefox', os: 'Linux', isBot: false }],
    [UA.googlebot, { device: 'bot', browser: 'unknown', os: 'unknown', isBot: true }],
    [UA.headless, { device: 'bot', browser: 'Chrome Headless', os: 'Windows', isBot: true }],
    [UA.curl, { device: 'bot', browser: 'unknown', os: 'unknown', isBot: true }],
    [undefined, { device: 'unknown', browser: 'unknown', os: 'unknown', isBot: false }],
    ['   ', { device: 'unknown', browser: 'unknown', os: 'unknown', isBot: false }],
  ])('%s', (ua, expected) => {
    expect(createUserAgentParser()(ua)).toEqual(expected);
  });

  it('caches results in a map that never exceeds its bound', () => {
    const parse = createUserAgentParser({ cacheSize: 3 });
    const first = parse(UA.chromeWindows);
    expect(parse(UA.chromeWindows)).toBe(first); // the cached object itself
    for (let i = 0; i < 50; i++) parse(`${UA.firefoxLinux} build/${i}`);
    expect(parse.cacheSize).toBe(3);
    // Evicted, recomputed, still right.
    expect(parse(UA.chromeWindows)).toEqual(first);
    expect(parse.cacheSize).toBe(3);
  });

  it('cuts user agents longer than 1024 characters before caching', () => {
    const parse = createUserAgentParser({ cacheSize: 10 });
    expect(parse(UA.chromeWindows + 'x'.repeat(5000))).toEqual({ device: 'desktop', browser: 'Chrome', os: 'Windows', isBot: false });
  });
});

describe('bounded cache', () => {
  it('evicts first in, first out and never grows past capacity', () => {
    const c = createBoundedCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    c.set('a', 10); // update, no eviction
    c.set('c', 3);
    expect([c.get('a'), c.get('b'), c.get('c'), c.size]).toEqual([undefined, 2, 3, 2]);
    const off = createBoundedCache<string, number>(0);
    off.set('a', 1);
    expect(off.get('a')).toBeUndefined();
  });

  it('keeps exactly the last `capacity` distinct keys however many pass through', () => {
    const c = createBoundedCache<number, number>(10);
    for (let i = 0; i < 1000; i++) {
      c.set(i, i);
      if (i % 7 === 0) c.set(i, -i); // updates do not take a new slot
    }
    expect(c.size).toBe(10);
    expect(Array.from({ length: 1000 }, (_, i) => c.get(i) !== undefined).lastIndexOf(false)).toBe(989);
  });
});

describe('enrich step: bot policy', () => {
  const dims = ['browser', 'device', 'is_bot', 'os'] as const;

  it('drops bots under BOT_POLICY=drop and keeps humans', () => {
    const enrich = createEnrichStep({ dimensions: [...dims], botPolicy: 'drop', pathQueryAllowlist: [] });
    expect(enrich(track({ context: { userAgent: UA.googlebot } }), {})).toEqual(drop('bot'));
    expect(enrich(track({ context: { userAgent: UA.safariIphone } }), {})).toEqual(
      ok([
        ['browser', 'Mobile Safari'],
        ['device', 'mobile'],
        ['is_bot', 'false'],
        ['os', 'iOS'],
      ]),
    );
  });

  it('aggregates bots under BOT_POLICY=keep with is_bot=true', () => {
    const enrich = createEnrichStep({ dimensions: [...dims], botPolicy: 'keep', pathQueryAllowlist: [] });
    expect(enrich(track({ context: { userAgent: UA.googlebot } }), {})).toEqual(
      ok([
        ['browser', 'unknown'],
        ['device', 'bot'],
        ['is_bot', 'true'],
        ['os', 'unknown'],
      ]),
    );
  });

  it('reads the UA from the event, else the batch context, else the beacon header', () => {
    const enrich = createEnrichStep({ dimensions: ['browser'], botPolicy: 'drop', pathQueryAllowlist: [] });
    expect(enrich(track({ context: { userAgent: UA.firefoxLinux } }), { batchContext: { userAgent: UA.googlebot }, headerUserAgent: UA.curl })).toEqual(ok([['browser', 'Firefox']]));
    expect(enrich(track(), { batchContext: { userAgent: UA.safariMac }, headerUserAgent: UA.curl })).toEqual(ok([['browser', 'Safari']]));
    expect(enrich(track(), { headerUserAgent: UA.curl })).toEqual(drop('bot'));
    // Server SDK events carry no UA: no evidence of a bot.
    expect(enrich(track(), {})).toEqual(ok([['browser', 'unknown']]));
  });
});

describe('path normalization', () => {
  const normalize = createPathNormalizer({ allowlist: ['utm_source', 'utm_medium', 'utm_campaign'] });
  it.each<[PageLocation, string]>([
    [{ path: '/pricing' }, '/pricing'],
    [{ path: '/pricing/' }, '/pricing'],
    [{ path: '/' }, '/'],
    [{ path: '' }, 'unknown'],
    [{ path: 'docs/intro' }, '/docs/intro'],
    [{ path: '//a///b/' }, '/a/b'],
    [{ path: '/Docs/Intro' }, '/Docs/Intro'],
    [{ path: '/a#section' }, '/a'],
    [{ path: '/a?token=secret&utm_source=news' }, '/a?utm_source=news'],
    [{ path: '/a?utm_campaign=spring&utm_source=news&utm_medium=mail' }, '/a?utm_source=news&utm_medium=mail&utm_campaign=spring'],
    [{ path: '/a?utm_source=' }, '/a'],
    [{ path: '/a?utm_source=a%20b#x' }, '/a?utm_source=a+b'],
    [{ path: '/a', search: '?utm_source=news&q=x' }, '/a?utm_source=news'],
    [{ path: '/a?q=1', search: '?utm_source=news' }, '/a'],
    [{ path: '/a?utm_source=alice%40example.com' }, '/a?utm_source=%5Bemail%5D'],
    [{ url: 'https://Shop.Example/Cart/?utm_medium=cpc&id=5#top' }, '/Cart?utm_medium=cpc'],
    [{ url: 'not a url' }, 'unknown'],
    [{}, 'unknown'],
    [{ path: '/users/alice@example.com/orders' }, '/users/[email]/orders'],
    [{ path: '/call/+1-555-123-4567' }, '/call/[phone]'],
    [{ path: '/archive/2024-05-01' }, '/archive/2024-05-01'],
    [{ path: '/orders/123456789' }, '/orders/123456789'],
  ])('%j -> %s', (loc, expected) => {
    expect(normalize(loc)).toBe(expected);
  });

  it('keeps no query at all with an empty allowlist, and caps the length', () => {
    const plain = createPathNormalizer({ allowlist: [] });
    expect(plain({ path: '/a?utm_source=x' })).toBe('/a');
    expect(plain({ path: `/${'x'.repeat(1000)}` })).toHaveLength(512);
  });
});

describe('referrer domain', () => {
  const referrer = createReferrerStep();
  it.each<[string | undefined, string | undefined, string]>([
    ['https://www.google.com/search?q=alice%40example.com', 'https://shop.example/', 'google.com'],
    ['https://News.YCombinator.com:443/item?id=1', undefined, 'news.ycombinator.com'],
    ['https://m.facebook.com/', undefined, 'm.facebook.com'],
    ['android-app://com.google.android.gm/', undefined, 'com.google.android.gm'],
    ['duckduckgo.com/', undefined, 'duckduckgo.com'],
    ['', 'https://shop.example/', '(direct)'],
    [undefined, undefined, '(direct)'],
    ['https://shop.example/cart', 'https://www.shop.example/checkout', '(direct)'],
    ['https://WWW.Shop.Example./a', 'https://shop.example/', '(direct)'],
    ['https://blog.shop.example/', 'https://shop.example/', 'blog.shop.example'],
    ['https://shop.example/a', 'https://user:pw@WWW.Shop.Example:8443/b?x#y', '(direct)'],
    ['https://xn--bcher-kva.example/', 'https://bücher.example/', '(direct)'],
    ['http://203.0.113.77:8080/admin', undefined, '(ip)'],
    ['http://[2001:db8::1]/', undefined, '(ip)'],
    ['about:blank', undefined, 'unknown'],
    ['https://', undefined, 'unknown'],
  ])('%s on %s -> %s', (ref, page, expected) => {
    expect(referrer(ref, page)).toBe(expected);
  });

  it('is a dimension, from context.page (event, then batch) or properties', () => {
    const enrich = createEnrichStep({ dimensions: ['referrer_domain'], botPolicy: 'keep', pathQueryAllowlist: [] });
    expect(enrich(track({ context: { page: { referrer: 'https://t.co/x', url: 'https://a.example/' } } }), {})).toEqual(ok([['referrer_domain', 't.co']]));
    expect(enrich(track(), { batchContext: { page: { referrer: 'https://bing.com/' } } })).toEqual(ok([['referrer_domain', 'bing.com']]));
    expect(enrich({ type: 'page', userId: 'u', properties: { referrer: 'https://www.reddit.com/r/x' } }, {})).toEqual(ok([['referrer_domain', 'reddit.com']]));
    expect(enrich(track(), {})).toEqual(ok([['referrer_domain', '(direct)']]));
  });
});

describe('scrubbing free text', () => {
  it.each([
    ['Signed up alice.liddell@example.com', 'Signed up [email]'],
    ['mailto:Bob+tag@Mail.Example.co.uk?x', 'mailto:[email]?x'],
    ['alice%40example.com', '[email]'],
    ['from 203.0.113.77 today', 'from [ip] today'],
    ['v6 2001:db8:85a3::8a2e:370:7334 end', 'v6 [ip] end'],
    ['host ::ffff:c000:280', 'host [ip]'],
    ['call +1 (555) 123-4567 now', 'call [phone] now'],
    ['+4915112345678', '[phone]'],
    ['+44 20 7946 0958', '[phone]'],
    ['(555) 123-4567', '[phone]'],
    ['555-1234', '[phone]'],
    ['030 1234 5678', '[phone]'],
    // Left alone: ids, dates, times, versions, short numbers.
    ['order 123456789', 'order 123456789'],
    ['ts 1714564800000', 'ts 1714564800000'],
    ['2024-05-01T12:00:00.000Z', '2024-05-01T12:00:00.000Z'],
    ['on 01.05.2024 at 12:30:45', 'on 01.05.2024 at 12:30:45'],
    ['version 1.2.3', 'version 1.2.3'],
    ['Checkout Step 2', 'Checkout Step 2'],
    ['room 42-7', 'room 42-7'],
    ['std::string', 'std::string'],
  ])('%s -> %s', (input, expected) => {
    expect(scrubText(input)).toBe(expected);
  });

  it('applies to event names, the only free text aggregated as is', () => {
    expect(eventName(track({ event: 'Invite sent to carol@example.org' }))).toBe('Invite sent to [email]');
    expect(eventName({ type: 'page', userId: 'u' })).toBe('$page');
  });
});

describe('country lookup, per runtime', () => {
  const withCf = Object.assign(new Request('https://edge.example/v1/collect', { headers: { 'x-country': 'de' } }), { cf: { country: 'NL' } });

  it('Workers: the trusted header when configured, else request.cf.country', () => {
    expect(workersCountry('x-country')(withCf)).toBe('de');
    expect(workersCountry(undefined)(withCf)).toBe('NL');
    expect(workersCountry(undefined)(new Request('https://edge.example/'))).toBeUndefined();
    expect(workersCountry(undefined)(new Request('https://edge.example/', { headers: { 'cf-ipcountry': 'US' } }))).toBeUndefined();
  });

  it('Node and Deno: the trusted header only', () => {
    expect(trustedHeaderCountry('x-country')(withCf)).toBe('de');
    expect(trustedHeaderCountry(undefined)(withCf)).toBeUndefined();
    expect(trustedHeaderCountry(undefined)(new Request('https://edge.example/', { headers: { 'cf-ipcountry': 'US' } }))).toBeUndefined();
  });
});

describe('enrichment through the edge', () => {
  it('drops a beacon whose User-Agent header is a bot, but never judges Segment endpoints by the header', async () => {
    const edge = makeEdge({ DIMENSIONS: 'browser,is_bot' });
    const beacon = (ua: string) =>
      edge.app.request('/v1/collect', { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': ua }, body: JSON.stringify({ ...trackEvent(), writeKey: 'wk_a' }) });
    expect((await beacon(UA.googlebot)).status).toBe(202);
    expect((await beacon(UA.firefoxLinux)).status).toBe(202);
    // analytics-node's own User-Agent would look like a bot; only context.userAgent counts there.
    const res = await send(edge, '/v1/batch', { batch: [trackEvent()] }, { writeKey: 'wk_a', headers: { 'user-agent': 'analytics-node-next/latest' } });
    expect(await json(res)).toMatchObject({ accepted: 1 });
    await edge.flusher.flushNow();
    expect(sentRows(edge.partials).map((r) => r.dimensions.map(([, v]) => v).join(',')).sort()).toEqual(['Firefox,false', 'unknown,false']);
    expect(await json(await edge.app.request('/health'))).toMatchObject({ dropped: { bot: 1, duplicate_message_id: 0 } });
  });

  it('aggregates bots with is_bot=true under BOT_POLICY=keep', async () => {
    const edge = makeEdge({ DIMENSIONS: 'device,is_bot', BOT_POLICY: 'keep' });
    await send(edge, '/v1/batch', { batch: [trackEvent({ context: { userAgent: UA.googlebot } }), trackEvent({ context: { userAgent: UA.safariIphone } })] }, { writeKey: 'wk_a' });
    expect(sentRows(edge.partials).map((r) => r.dimensions).sort()).toEqual([
      [
        ['device', 'bot'],
        ['is_bot', 'true'],
      ],
      [
        ['device', 'mobile'],
        ['is_bot', 'false'],
      ],
    ]);
  });

  it('keeps the allowlisted campaign parameters in the path and the referrer domain', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path,referrer_domain' });
    const page = { path: '/landing/', search: '?utm_source=news&utm_medium=email&gclid=abc', url: 'https://shop.example/landing/?utm_source=news', referrer: 'https://www.google.com/search?q=x' };
    await send(edge, '/v1/batch', { batch: [{ type: 'page', userId: 'u', messageId: 'p1', context: { page } }] }, { writeKey: 'wk_a' });
    expect(sentRows(edge.partials)[0]?.dimensions).toEqual([
      ['path', '/landing?utm_source=news&utm_medium=email'],
      ['referrer_domain', 'google.com'],
    ]);
  });
});
