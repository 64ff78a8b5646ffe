/**
 * A generated, realistic edge workload: about 100k events per minute from 5k users on a site
 * with 200 paths of Zipf popularity, shaped like what analytics.js and analytics-node send
 * (context.page, userAgent, userAgentData, library, locale, timezone, campaign tags, messageId),
 * with a few percent of bot user agents. Deterministic (seeded), so runs compare.
 */
import { rng } from '../../test/support/prng.ts';

export interface ProfileOptions {
  /** Events in the profile. Default 100 000 (one minute of traffic). */
  events?: number;
  users?: number;
  paths?: number;
  /** Events per batch body. Default 100. */
  batchSize?: number;
  seed?: number;
  /** Event time of the first event (epoch ms); the events spread over `spanMs`. */
  startMs?: number;
  spanMs?: number;
}

export interface Profile {
  /** Batch bodies as sent on the wire (`{"batch":[...],"sentAt":...}`), UTF-8. */
  batches: Uint8Array[];
  /** Country of each batch's client, as a trusted proxy header would carry it. */
  batchCountries: string[];
  /** Each event alone (what a browser beacon sends), UTF-8, with the write key in the body. */
  beacons: Uint8Array[];
  beaconCountries: string[];
  events: number;
  startMs: number;
  spanMs: number;
}

/** Dimensions the benchmark aggregates by: six, as in the issue. */
export const BENCH_DIMENSIONS = 'path,country,device,browser,os,referrer_domain';

const HUMAN_UAS: Array<[string, number]> = [
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 30],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', 18],
  ['Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36', 16],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 10],
  ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15', 6],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0', 6],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', 4],
  ['Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', 3],
  ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 2],
  ['Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36', 2],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1', 1],
];
const BOT_UAS: Array<[string, number]> = [
  ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 1],
  ['Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36', 0.5],
  ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36', 0.5],
];
const COUNTRIES: Array<[string, number]> = [['US', 30], ['DE', 12], ['GB', 10], ['FR', 8], ['IN', 8], ['BR', 6], ['NL', 5], ['CA', 5], ['JP', 4], ['ES', 4], ['IT', 4], ['PL', 2], ['SE', 2]];
const REFERRERS: Array<[string, number]> = [
  ['', 45],
  ['https://www.google.com/', 25],
  ['https://shop.example.com/', 10],
  ['https://t.co/', 5],
  ['https://www.bing.com/', 4],
  ['https://news.ycombinator.com/', 3],
  ['https://duckduckgo.com/', 3],
  ['https://www.reddit.com/', 3],
  ['https://l.facebook.com/', 2],
];
const TRACK_EVENTS: Array<[string, number]> = [['Product Viewed', 30], ['Product Added', 10], ['Checkout Started', 4], ['Order Completed', 2], ['Signed Up', 1], ['Search', 15]];


function weighted<T>(items: Array<[T, number]>, random: () => number): () => T {
  const total = items.reduce((n, [, w]) => n + w, 0);
  return () => {
    let r = random() * total;
    for (const [item, w] of items) if ((r -= w) < 0) return item;
    return (items[items.length - 1] as [T, number])[0];
  };
}

/** Zipf(s = 1) over `n` ranks, by inverse CDF on precomputed cumulative weights. */
function zipf(n: number, random: () => number): () => number {
  const cumulative: number[] = [];
  let sum = 0;
  for (let k = 1; k <= n; k++) cumulative.push((sum += 1 / k));
  return () => {
    const r = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export function generateProfile(o: ProfileOptions = {}): Profile {
  const events = o.events ?? 100_000;
  const userCount = o.users ?? 5000;
  const pathCount = o.paths ?? 200;
  const batchSize = o.batchSize ?? 100;
  const startMs = o.startMs ?? Date.parse('2026-11-02T10:00:00.000Z');
  const spanMs = o.spanMs ?? 60_000;
  const random = rng(o.seed ?? 42);
  const sections = ['products', 'blog', 'docs', 'help', 'category', 'collections'];
  const paths = Array.from({ length: pathCount }, (_, i) => (i === 0 ? '/' : `/${sections[i % sections.length]}/${(i * 7919).toString(36)}-item-${i}`));
  const pathRank = zipf(pathCount, random);
  const pickUa = weighted([...HUMAN_UAS, ...BOT_UAS], random);
  const pickCountry = weighted(COUNTRIES, random);
  const pickReferrer = weighted(REFERRERS, random);
  const pickTrack = weighted(TRACK_EVENTS, random);
  const users = Array.from({ length: userCount }, (_, i) => ({
    anonymousId: uuid(random),
    userId: i % 3 === 0 ? `usr_${(i * 104729).toString(36)}${i}` : undefined,
    ua: pickUa(),
    country: pickCountry(),
    locale: ['en-US', 'de-DE', 'en-GB', 'fr-FR', 'pt-BR'][i % 5] as string,
  }));

  const all: Array<Record<string, unknown>> = [];
  for (let i = 0; i < events; i++) {
    const user = users[Math.floor(random() * userCount)] as (typeof users)[number];
    const path = paths[pathRank()] as string;
    const campaign = random() < 0.15 ? `?utm_source=newsletter&utm_medium=email&utm_campaign=spring-${Math.floor(random() * 5)}` : '';
    const ts = new Date(startMs + Math.floor((i / events) * spanMs)).toISOString();
    const isPage = random() < 0.55;
    const page = { path, referrer: pickReferrer(), search: campaign, title: `Shop — ${path.split('/').pop() ?? 'home'}`, url: `https://shop.example.com${path}${campaign}` };
    const event: Record<string, unknown> = {
      type: isPage ? 'page' : 'track',
      ...(isPage ? { name: page.title, properties: { ...page } } : { event: pickTrack(), properties: trackProperties(random) }),
      anonymousId: user.anonymousId,
      ...(user.userId !== undefined ? { userId: user.userId } : {}),
      messageId: `ajs-next-${startMs + i}-${uuid(random)}`,
      timestamp: ts,
      context: {
        page,
        userAgent: user.ua,
        userAgentData: { brands: [{ brand: 'Chromium', version: '124' }, { brand: 'Not-A.Brand', version: '99' }], mobile: user.ua.includes('Mobile'), platform: 'Windows' },
        locale: user.locale,
        library: { name: 'analytics.js', version: 'npm:next-1.70.0' },
        timezone: 'Europe/Berlin',
        ...(campaign !== '' ? { campaign: { source: 'newsletter', medium: 'email', name: 'spring' } } : {}),
      },
      integrations: {},
      sentAt: ts,
      _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
      country: user.country,
    };
    all.push(event);
  }

  const enc = new TextEncoder();
  const batches: Uint8Array[] = [];
  const batchCountries: string[] = [];
  for (let i = 0; i < all.length; i += batchSize) {
    const batch = all.slice(i, i + batchSize).map(({ country: _c, ...e }) => e);
    const first = batch[0] as { timestamp: string };
    batches.push(enc.encode(JSON.stringify({ batch, sentAt: first.timestamp, writeKey: 'wk_bench' })));
    batchCountries.push(String(all[i]?.country));
  }
  const beacons = all.map(({ country: _c, ...e }) => enc.encode(JSON.stringify({ ...e, writeKey: 'wk_bench' })));
  const beaconCountries = all.map((e) => String(e.country));
  return { batches, batchCountries, beacons, beaconCountries, events, startMs, spanMs };
}

function trackProperties(random: () => number): Record<string, unknown> {
  const price = Math.round(random() * 20_000) / 100;
  return { product_id: `sku-${Math.floor(random() * 5000)}`, category: 'Apparel', price, value: price, currency: 'EUR', quantity: 1 + Math.floor(random() * 3) };
}

function uuid(random: () => number): string {
  const h = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${h(8)}-${h(4)}-4${h(3)}-a${h(3)}-${h(12)}`;
}
