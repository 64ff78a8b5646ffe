import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { installFakeBrowser, loadSdk, PAGE, settle, type FakeBrowser } from './fake-browser.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const T0 = Date.parse('2026-11-20T10:00:00.000Z');
const ENDPOINT = 'https://edge.example';

let browser: FakeBrowser;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
  browser = installFakeBrowser();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

describe('collecting and batching', () => {
  it('sends one text/plain batch with writeKey and sentAt to /v1/collect once flushAt events are queued', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: `${ENDPOINT}/`, flushAt: 3 });
    sdk.page();
    sdk.track('Signup Clicked', { plan: 'pro', value: 3 });
    expect(browser.fetch).not.toHaveBeenCalled();
    sdk.identify('user-42', { email: 'ada@example.com' });
    await settle();

    expect(browser.fetch).toHaveBeenCalledTimes(1);
    const [sent] = browser.fetched();
    expect(sent!.url).toBe(`${ENDPOINT}/v1/collect`);
    // A string body and no custom headers keep it a CORS "simple" request: no preflight.
    expect(sent!.init).toMatchObject({ method: 'POST' });
    expect(sent!.init.headers).toBeUndefined();
    expect(sent!.init.keepalive).toBeFalsy();
    expect(sent!.body.writeKey).toBe('wk_demo');
    expect(sent!.body.sentAt).toBe(new Date(T0).toISOString());

    const [page, track, identify] = sent!.body.batch;
    const anonymousId = browser.storage.sdk('aid');
    expect(anonymousId).toMatch(UUID);
    const context = {
      page: { path: PAGE.pathname, url: PAGE.href, referrer: PAGE.referrer, search: PAGE.search, title: PAGE.title },
      userAgent: PAGE.userAgent,
      library: { name: 'tributary.js', version: sdk.VERSION },
    };
    expect(page).toEqual({
      type: 'page',
      messageId: expect.stringMatching(UUID),
      timestamp: new Date(T0).toISOString(),
      anonymousId,
      context,
      properties: context.page,
    });
    expect(track).toEqual({
      type: 'track',
      event: 'Signup Clicked',
      properties: { plan: 'pro', value: 3 },
      messageId: expect.stringMatching(UUID),
      timestamp: new Date(T0).toISOString(),
      anonymousId,
      context,
    });
    expect(identify).toMatchObject({ type: 'identify', userId: 'user-42', traits: { email: 'ada@example.com' }, anonymousId });
    expect(new Set(sent!.body.batch.map((e) => e.messageId)).size).toBe(3);
    // Accepted: the durable queue is empty again.
    expect(browser.storage.sdk('q')).toEqual([]);
  });

  it('sends fewer than flushAt events once flushIntervalMs has passed', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 20, flushIntervalMs: 5000 });
    sdk.track('A');
    await vi.advanceTimersByTimeAsync(3000);
    sdk.track('B');
    await vi.advanceTimersByTimeAsync(1999);
    expect(browser.fetch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(browser.fetched().map((r) => r.body.batch.map((e) => e.event))).toEqual([['A', 'B']]);
  });

  it('keeps anonymousId and userId across page loads; reset() forgets both', async () => {
    let sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    sdk.identify('user-7');
    await settle();
    sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    sdk.track('Next page');
    await settle();
    const [first, second] = browser.fetched().map((r) => r.body.batch[0]!);
    expect(second!.anonymousId).toBe(first!.anonymousId);
    expect(second!.userId).toBe('user-7');

    sdk.reset();
    sdk.track('After logout');
    await settle();
    const third = browser.fetched()[2]!.body.batch[0]!;
    expect(third.userId).toBeUndefined();
    expect(third.anonymousId).toMatch(UUID);
    expect(third.anonymousId).not.toBe(first!.anonymousId);
  });

  it('sends events a previous page left in the queue after init', async () => {
    let sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 20, flushIntervalMs: 60_000 });
    sdk.track('Left behind');
    expect(browser.storage.sdk('q')).toHaveLength(1);
    sdk = await loadSdk(); // the page was closed before the interval (and without a beacon)
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 20, flushIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(browser.fetched().map((r) => r.body.batch[0]!.event)).toEqual(['Left behind']);
    expect(browser.storage.sdk('q')).toEqual([]);
  });

  it('records nothing before init', async () => {
    const sdk = await loadSdk();
    sdk.track('Too early');
    sdk.page();
    expect(browser.storage.items.size).toBe(0);
  });
});

describe('retries', () => {
  it('keeps events on 5xx, 429 and network errors and retries with exponential back-off', async () => {
    // The delay is min(1 s * 2^attempt, 60 s) times a jitter factor in [0.5, 1); random 0 gives 0.5.
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    browser.respondWith(503);
    sdk.track('Kept');
    await settle();
    expect(browser.fetch).toHaveBeenCalledTimes(1);
    expect(browser.storage.sdk('q')).toHaveLength(1);

    browser.respondWith(429);
    await vi.advanceTimersByTimeAsync(499);
    expect(browser.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(browser.fetch).toHaveBeenCalledTimes(2);

    // Reaching flushAt again does not jump the back-off.
    browser.respondWith('network-error');
    sdk.track('Also kept');
    await settle();
    expect(browser.fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(browser.fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(browser.fetch).toHaveBeenCalledTimes(3);
    expect(browser.storage.sdk('q')).toHaveLength(2);

    browser.respondWith(202);
    await vi.advanceTimersByTimeAsync(2000);
    expect(browser.fetch).toHaveBeenCalledTimes(4);
    expect(browser.fetched()[3]!.body.batch.map((e) => e.event)).toEqual(['Kept', 'Also kept']);
    // Every attempt carried the same messageIds, so the edge counts a repeat once.
    expect(new Set(browser.fetched().map((r) => r.body.batch[0]!.messageId)).size).toBe(1);
    expect(browser.storage.sdk('q')).toEqual([]);
  });

  it('caps the back-off at 60 s (30 s with the smallest jitter factor)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    browser.respondWith(500);
    sdk.track('A');
    await settle();
    for (const delay of [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
      const calls = browser.fetch.mock.calls.length;
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(browser.fetch.mock.calls.length, `no retry before ${delay} ms`).toBe(calls);
      await vi.advanceTimersByTimeAsync(1);
      expect(browser.fetch.mock.calls.length, `retry after ${delay} ms`).toBe(calls + 1);
    }
  });

  it('drops a batch the edge refuses for good (4xx other than 429) instead of retrying forever', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_unknown', endpoint: ENDPOINT, flushAt: 1 });
    browser.respondWith(401);
    sdk.track('A');
    await settle();
    expect(browser.storage.sdk('q')).toEqual([]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(browser.fetch).toHaveBeenCalledTimes(1);
  });

  it('flush() sends now and resolves when the queue is empty', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000 });
    sdk.track('A');
    sdk.track('B');
    await sdk.flush();
    expect(browser.fetch).toHaveBeenCalledTimes(1);
    expect(browser.storage.sdk('q')).toEqual([]);
  });
});

describe('the durable queue is bounded', () => {
  it('drops the oldest events beyond maxQueueEvents and counts them', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1000, flushIntervalMs: 60_000, maxQueueEvents: 5 });
    for (let i = 0; i < 8; i++) sdk.track(`e${i}`);
    expect((browser.storage.sdk('q') as Array<{ event: string }>).map((e) => e.event)).toEqual(['e3', 'e4', 'e5', 'e6', 'e7']);
    expect(sdk.dropped()).toBe(3);
    expect(browser.storage.sdk('dropped')).toBe(3);
  });

  it('drops the oldest events beyond maxQueueBytes (JSON characters)', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1000, flushIntervalMs: 60_000, maxQueueBytes: 5000 });
    for (let i = 0; i < 10; i++) sdk.track(`e${i}`, { note: 'x'.repeat(1000) });
    const raw = browser.storage.items.get('trib_q')!;
    expect(raw.length).toBeLessThanOrEqual(5000);
    const kept = (JSON.parse(raw) as Array<{ event: string }>).map((e) => e.event);
    expect(kept.at(-1)).toBe('e9');
    expect(sdk.dropped()).toBe(10 - kept.length);
    expect(kept.length).toBeGreaterThanOrEqual(2);
  });

  it('has defaults of 500 events and 256 KiB', async () => {
    // Seeded close to the bounds (as a long outage would leave it), then filled past them.
    const seed = (n: number, note: string) => Array.from({ length: n }, (_, i) => ({ type: 'track', event: `seed${i}`, messageId: `seed-${i}`, properties: { note } }));
    browser.storage.setItem('trib_q', JSON.stringify(seed(495, '')));
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 10_000, flushIntervalMs: 600_000 });
    for (let i = 0; i < 15; i++) sdk.track(`e${i}`);
    expect(browser.storage.sdk('q')).toHaveLength(500);
    expect((browser.storage.sdk('q') as Array<{ event: string }>)[0]!.event).toBe('seed10');
    expect(sdk.dropped()).toBe(10);

    browser.storage.setItem('trib_q', JSON.stringify(seed(62, 'x'.repeat(4000))));
    expect(browser.storage.items.get('trib_q')!.length).toBeLessThan(256 * 1024);
    for (let i = 0; i < 5; i++) sdk.track(`big${i}`, { note: 'x'.repeat(4000) });
    const raw = browser.storage.items.get('trib_q')!;
    expect(raw.length).toBeLessThanOrEqual(256 * 1024);
    expect(raw.length).toBeGreaterThan(250 * 1024);
    expect((JSON.parse(raw) as Array<{ event: string }>).at(-1)!.event).toBe('big4');
    expect(sdk.dropped()).toBeGreaterThan(10);
  });
});

describe('leaving the page', () => {
  it('sends the queue with sendBeacon on pagehide and removes what the browser took', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000 });
    sdk.page();
    sdk.track('Signup Clicked');
    browser.pagehide();
    expect(browser.sendBeacon).toHaveBeenCalledTimes(1);
    const [beacon] = browser.beacons();
    expect(beacon!.url).toBe(`${ENDPOINT}/v1/collect`);
    expect(browser.sendBeacon.mock.calls[0]![1]).toBeTypeOf('string'); // sent as text/plain
    expect(beacon!.body.writeKey).toBe('wk_demo');
    expect(beacon!.body.batch.map((e) => e.type)).toEqual(['page', 'track']);
    expect(browser.storage.sdk('q')).toEqual([]);
    expect(browser.fetch).not.toHaveBeenCalled();
  });

  it('sends when the page becomes hidden, not when it becomes visible', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000 });
    sdk.track('A');
    browser.setVisibility('visible');
    expect(browser.sendBeacon).not.toHaveBeenCalled();
    browser.setVisibility('hidden');
    expect(browser.sendBeacon).toHaveBeenCalledTimes(1);
    browser.pagehide(); // nothing left to send
    expect(browser.sendBeacon).toHaveBeenCalledTimes(1);
  });

  it('falls back to a keepalive fetch when sendBeacon refuses, and keeps the events until it is answered', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000 });
    sdk.track('A');
    browser.sendBeacon.mockReturnValue(false);
    browser.pagehide();
    expect(browser.fetch).toHaveBeenCalledTimes(1);
    expect(browser.fetched()[0]!.init).toMatchObject({ method: 'POST', keepalive: true });
    expect(browser.storage.sdk('q')).toHaveLength(1);
    await settle();
    expect(browser.storage.sdk('q')).toEqual([]);
  });

  it('beacons at most one chunk under the 64 KiB beacon quota; the rest waits for the next visit', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1000, flushIntervalMs: 60_000 });
    for (let i = 0; i < 100; i++) sdk.track(`e${i}`, { note: 'x'.repeat(1000) });
    browser.pagehide();
    expect(browser.sendBeacon).toHaveBeenCalledTimes(1);
    const data = browser.sendBeacon.mock.calls[0]![1];
    expect(new TextEncoder().encode(data).byteLength).toBeLessThan(64 * 1024);
    const sent = browser.beacons()[0]!.body.batch.length;
    expect(sent).toBeGreaterThan(10);
    expect(browser.storage.sdk('q')).toHaveLength(100 - sent);
  });

  it('works without sendBeacon (keepalive fetch only)', async () => {
    const sdk = await loadSdk();
    vi.stubGlobal('navigator', { userAgent: PAGE.userAgent, doNotTrack: null });
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000 });
    sdk.track('A');
    browser.pagehide();
    expect(browser.fetched()[0]!.init.keepalive).toBe(true);
  });
});

describe('privacy: opt-out, consent, Do-Not-Track', () => {
  it('optOut() deletes what is stored, then records and sends nothing, and is remembered across page loads', async () => {
    let sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 1000 });
    sdk.identify('user-1');
    sdk.track('Before');
    sdk.optOut();
    expect([...browser.storage.items.keys()]).toEqual(['trib_optout']);
    sdk.page();
    sdk.track('While opted out');
    browser.pagehide();
    await vi.advanceTimersByTimeAsync(10_000);

    sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    sdk.track('Next visit');
    browser.pagehide();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(browser.fetch).not.toHaveBeenCalled();
    expect(browser.sendBeacon).not.toHaveBeenCalled();
    expect([...browser.storage.items.keys()]).toEqual(['trib_optout']);

    sdk.optIn();
    sdk.track('After opt-in');
    await settle();
    expect(browser.fetched().flatMap((r) => r.body.batch.map((e) => e.event))).toEqual(['After opt-in']);
    expect(browser.fetched()[0]!.body.batch[0]!.userId).toBeUndefined();
  });

  it('consent: false collects and stores nothing until setConsent(true); setConsent(false) deletes the queue', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 100, flushIntervalMs: 60_000, consent: false });
    sdk.page();
    sdk.identify('user-1');
    browser.pagehide();
    expect(browser.storage.items.size).toBe(0);
    expect(browser.sendBeacon).not.toHaveBeenCalled();

    sdk.setConsent(true);
    sdk.track('Consented');
    expect(browser.storage.sdk('q')).toHaveLength(1);
    sdk.setConsent(false);
    expect(browser.storage.items.size).toBe(0);
    browser.pagehide();
    expect(browser.sendBeacon).not.toHaveBeenCalled();
  });

  it.each([
    ['Do-Not-Track', (b: FakeBrowser) => void (b.navigator.doNotTrack = '1')],
    ['Global Privacy Control', (b: FakeBrowser) => void (b.navigator.globalPrivacyControl = true)],
  ])('respectDoNotTrack honours %s; without the option the signal is ignored', async (_name, signal) => {
    signal(browser);
    let sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1, respectDoNotTrack: true });
    sdk.page();
    await settle();
    expect(browser.storage.items.size).toBe(0);
    expect(browser.fetch).not.toHaveBeenCalled();

    sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 1 });
    sdk.page();
    await settle();
    expect(browser.fetch).toHaveBeenCalledTimes(1);
  });
});

describe('environments', () => {
  it('posts to this page origin when no endpoint is given', async () => {
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', flushAt: 1 });
    sdk.track('A');
    await settle();
    expect(browser.fetched()[0]!.url).toBe('/v1/collect');
  });

  it('keeps working from memory when localStorage is blocked', async () => {
    Object.defineProperty(globalThis, 'localStorage', {
      configurable: true,
      get() {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      },
    });
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 2 });
    sdk.track('A');
    sdk.track('B');
    await settle();
    const [sent] = browser.fetched();
    expect(sent!.body.batch.map((e) => e.event)).toEqual(['A', 'B']);
    expect(sent!.body.batch[1]!.anonymousId).toBe(sent!.body.batch[0]!.anonymousId);
  });

  it('keeps working from memory when localStorage is full', async () => {
    vi.spyOn(browser.storage, 'setItem').mockImplementation(() => {
      throw new DOMException('quota', 'QuotaExceededError');
    });
    const sdk = await loadSdk();
    sdk.init({ writeKey: 'wk_demo', endpoint: ENDPOINT, flushAt: 2 });
    sdk.track('A');
    sdk.track('B');
    await settle();
    expect(browser.fetched()[0]!.body.batch.map((e) => e.event)).toEqual(['A', 'B']);
  });
});

describe('uuid', () => {
  it('uses crypto.randomUUID, else getRandomValues, else Math.random — always a v4 UUID', async () => {
    const { uuid } = await import('../../../sdk/browser/ids.ts');
    expect(uuid()).toMatch(UUID);
    const real = globalThis.crypto;
    const getRandomValues = <T extends ArrayBufferView>(array: T): T => real.getRandomValues(array);
    vi.stubGlobal('crypto', { getRandomValues });
    const fromRandomValues = Array.from({ length: 200 }, uuid);
    vi.stubGlobal('crypto', undefined);
    const fromMathRandom = Array.from({ length: 200 }, uuid);
    for (const ids of [fromRandomValues, fromMathRandom]) {
      for (const id of ids) expect(id).toMatch(UUID);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });
});
