import { describe, expect, it } from 'vitest';
import { hllEstimate } from '../../../shared/algebra/index.ts';
import { json, makeEdge, send, sentRows, T0, track } from './helpers.ts';

const MIN = 60_000;

describe('accepting events', () => {
  it('counts a batch per window, event and dimension, with unique users and values', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path' });
    const batch = [
      track({ userId: 'u1', context: { page: { path: '/pricing?utm=x' } }, properties: { value: 10 } }),
      track({ userId: 'u2', context: { page: { path: '/pricing' } }, properties: { value: 30 } }),
      track({ userId: 'u1', context: { page: { path: '/pricing' } } }),
      track({ userId: 'u3', context: { page: { path: '/' } }, timestamp: new Date(T0 + MIN).toISOString() }),
      { type: 'page', anonymousId: 'anon-1', messageId: 'p-1', timestamp: new Date(T0).toISOString(), context: { page: { path: '/' } } },
    ];
    const res = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ ok: true, accepted: 5, duplicates: 0, rejected: [] });

    const rows = sentRows(edge.partials);
    const byKey = new Map(rows.map((r) => [`${r.windowStartMs - T0}|${r.event}|${r.dimensions.map((d) => d.join('=')).join(',')}`, r]));
    expect([...byKey.keys()].sort()).toEqual(['0|$page|path=/', '0|signup|path=/pricing', '60000|signup|path=/'].sort());
    const pricing = byKey.get('0|signup|path=/pricing');
    expect(pricing?.site).toBe('site-a');
    expect(pricing?.windowSizeMs).toBe(MIN);
    expect(pricing?.partial.count).toBe(3);
    expect(Math.round(hllEstimate(pricing!.partial.users))).toBe(2);
    expect(pricing?.partial).toMatchObject({ valueCount: 2, sum: 40, min: 10, max: 30 });
    expect(byKey.get('60000|signup|path=/')?.partial.count).toBe(1);
    expect(byKey.get('0|$page|path=/')?.partial.count).toBe(1);
  });

  it('accepts the shapes real Segment SDKs send', async () => {
    const edge = makeEdge();
    // @segment/analytics-node: Basic auth, writeKey and sentAt at batch level, _metadata per event.
    const nodeBatch = {
      batch: [
        {
          type: 'track',
          event: 'Order Completed',
          userId: 'user-1',
          properties: { revenue: 12.5, currency: 'EUR' },
          context: { library: { name: '@segment/analytics-node', version: '2.1.2' } },
          _metadata: { nodeVersion: '20.19.0', jsRuntime: 'node' },
          integrations: {},
          messageId: 'node-next-1716-abc',
          timestamp: new Date(T0).toISOString(),
        },
      ],
      writeKey: 'wk_a',
      sentAt: new Date(T0).toISOString(),
    };
    expect((await send(edge, '/v1/batch', nodeBatch, { writeKey: 'wk_a' })).status).toBe(200);
    // analytics.js: text/plain body with writeKey, sentAt and a rich context per event.
    const browserEvent = {
      type: 'page',
      anonymousId: 'f2a1c8e4-3d9b-4c1e-9f7a-1b2c3d4e5f60',
      properties: { path: '/docs', url: 'https://example.com/docs?ref=nav', title: 'Docs', referrer: '', search: '?ref=nav' },
      context: {
        page: { path: '/docs', referrer: '', search: '?ref=nav', title: 'Docs', url: 'https://example.com/docs?ref=nav' },
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
        userAgentData: { brands: [{ brand: 'Chromium', version: '124' }], mobile: false, platform: 'Linux' },
        locale: 'en-US',
        library: { name: 'analytics.js', version: 'npm:next-1.70.0' },
        timezone: 'Europe/Berlin',
      },
      messageId: 'ajs-next-1716-def',
      timestamp: new Date(T0).toISOString(),
      integrations: { 'Segment.io': true },
      writeKey: 'wk_a',
      sentAt: new Date(T0 + 10).toISOString(),
      _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
    };
    const res = await edge.app.request('/v1/collect', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(browserEvent) });
    expect(res.status).toBe(202);
    await edge.flusher.flushNow();
    expect(sentRows(edge.partials).map((r) => `${r.event}|${r.dimensions.map((d) => d[1]).join(',')}|${r.partial.sum}`).sort()).toEqual(['$page|unknown,/docs|0', 'Order Completed|unknown,unknown|12.5']);
  });

  it('accepts a single track with the type implied by the endpoint', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/track', { event: 'signup', userId: 'u1', messageId: 'x1' }, { writeKey: 'wk_b' });
    expect(res.status).toBe(200);
    const rows = sentRows(edge.partials);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ site: 'site-b', event: 'signup', dimensions: [['country', 'unknown'], ['path', 'unknown']] });
  });

  it.each([
    ['/v1/page', { type: 'page', name: 'Home', userId: 'u' }, '$page'],
    ['/v1/screen', { name: 'Settings', anonymousId: 7 }, '$screen'],
    ['/v1/identify', { userId: 'u', traits: { plan: 'pro' } }, '$identify'],
  ])('%s is counted under its $ event name', async (path, body, event) => {
    const edge = makeEdge();
    const res = await send(edge, path, body, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    expect(sentRows(edge.partials).map((r) => r.event)).toEqual([event]);
  });

  it('refuses a body whose type contradicts the endpoint', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/track', { type: 'page', userId: 'u' }, { writeKey: 'wk_a' });
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ error: { code: 'invalid_event', errors: [{ path: '/type', message: 'must be "track" on /v1/track' }] } });
  });

  it('takes the write key from the body when there is no Basic auth', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', { writeKey: 'wk_b', batch: [track()] });
    expect(res.status).toBe(200);
    expect(sentRows(edge.partials)[0]?.site).toBe('site-b');
  });

  it('prefers the Basic auth write key over the body', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', { writeKey: 'wk_b', batch: [track()] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    expect(sentRows(edge.partials)[0]?.site).toBe('site-a');
  });

  it.each([
    ['an unknown Basic auth key', { writeKey: 'wk_nope' }, { batch: [] }],
    ['an unknown body key', {}, { writeKey: 'wk_nope', batch: [] }],
    ['no key at all', {}, { batch: [] }],
    ['a key named like an Object.prototype member', { writeKey: 'constructor' }, { batch: [] }],
  ])('answers 401 unknown_write_key for %s', async (_what, opts, body) => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', body, opts);
    expect(res.status).toBe(401);
    const payload = await json(res);
    expect(payload).toMatchObject({ error: { code: 'unknown_write_key' } });
    expect(String((payload.error as { message: string }).message)).toContain('Basic auth user name');
    expect(edge.partials.messages).toHaveLength(0);
  });

  it('does not count a retried messageId twice', async () => {
    const edge = makeEdge();
    const event = track({ messageId: 'retry-me' });
    expect((await send(edge, '/v1/batch', { batch: [event, event] }, { writeKey: 'wk_a' })).status).toBe(200);
    const again = await send(edge, '/v1/track', event, { writeKey: 'wk_a' });
    expect(await json(again)).toEqual({ ok: true, accepted: 1, duplicates: 1, rejected: [] });
    expect(sentRows(edge.partials).reduce((n, r) => n + r.partial.count, 0)).toBe(1);
  });

  it('keeps the same messageId of two sites apart', async () => {
    const edge = makeEdge();
    await send(edge, '/v1/track', track({ messageId: 'same' }), { writeKey: 'wk_a' });
    await send(edge, '/v1/track', track({ messageId: 'same' }), { writeKey: 'wk_b' });
    expect(sentRows(edge.partials).map((r) => r.site).sort()).toEqual(['site-a', 'site-b']);
  });

  it('uses the trusted country header and the batch context page', async () => {
    const edge = makeEdge({ COUNTRY_HEADER: 'X-Country' });
    const res = await send(edge, '/v1/batch', { context: { page: { path: '/from-batch' } }, batch: [track()] }, { writeKey: 'wk_a', headers: { 'x-country': 'de' } });
    expect(res.status).toBe(200);
    expect(sentRows(edge.partials)[0]?.dimensions).toEqual([['country', 'DE'], ['path', '/from-batch']]);
  });

  it('lets the entry supply the country (e.g. request.cf.country on Workers)', async () => {
    const edge = makeEdge({}, { country: () => 'fr' });
    await send(edge, '/v1/track', track(), { writeKey: 'wk_a' });
    expect(sentRows(edge.partials)[0]?.dimensions[0]).toEqual(['country', 'FR']);
  });

  it('corrects client clock skew with sentAt and clamps events from the future', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path', MAX_FUTURE_SKEW_MS: '300000' });
    edge.clock.now = T0 + 30_000;
    // The client clock is one hour ahead: timestamp and sentAt are both +1 h.
    const skewed = track({ event: 'skewed', timestamp: new Date(T0 + 3_600_000).toISOString() });
    const future = track({ event: 'future', timestamp: new Date(T0 + 7_200_000).toISOString() });
    const res = await send(edge, '/v1/batch', { sentAt: new Date(T0 + 3_600_000 + 30_000).toISOString(), batch: [skewed] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    await send(edge, '/v1/track', future, { writeKey: 'wk_a' });
    const rows = sentRows(edge.partials);
    expect(rows.find((r) => r.event === 'skewed')?.windowStartMs).toBe(T0);
    // No sentAt: clamped to receivedAt + 5 min.
    expect(rows.find((r) => r.event === 'future')?.windowStartMs).toBe(T0 + 5 * MIN);
  });

  it('answers /v1/collect beacons at once with CORS, text/plain bodies included', async () => {
    const edge = makeEdge();
    const res = await edge.app.request('/v1/collect', {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ writeKey: 'wk_a', batch: [track(), track({ type: 'nope' })] }),
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await json(res)).toMatchObject({ ok: true, accepted: 1, rejected: [{ index: 1 }] });
    expect(edge.partials.messages).toHaveLength(0);
    await edge.flusher.flushNow();
    expect(sentRows(edge.partials)).toHaveLength(1);

    const single = await edge.app.request('/v1/collect', { method: 'POST', body: JSON.stringify({ ...track(), writeKey: 'wk_a' }) });
    expect(single.status).toBe(202);
    const bad = await edge.app.request('/v1/collect', { method: 'POST', body: '{nope' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe('*');
    const preflight = await edge.app.request('/v1/collect', { method: 'OPTIONS' });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('reports health and answers unknown paths with a JSON 404', async () => {
    const edge = makeEdge();
    const health = await edge.app.request('/health');
    expect(health.status).toBe(200);
    expect(await json(health)).toMatchObject({ ok: true, pendingRows: 0, dropped: { bot: 0, duplicate_message_id: 0 }, usersNotCounted: { salt_expired: 0 } });
    const missing = await edge.app.request('/v2/track', { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ error: { code: 'not_found' } });
  });
});
