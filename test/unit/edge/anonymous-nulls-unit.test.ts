import { describe, expect, it } from 'vitest';
import { hllEstimate, hllMerge } from '../../../shared/algebra/index.ts';
import { INGEST_ENDPOINTS } from '../../../edge/http-ingest.ts';
import { answered, json, makeEdge, postInit, sentRows, T0 } from './helpers.ts';

// An anonymous visitor's event as @segment/analytics-next sends it: `"userId": null`, nulls in
// other absent fields, the writeKey in a text/plain body (the short paths) or as Basic auth.
function anonymous(type: 'track' | 'page' | 'screen' | 'identify', messageId: string): Record<string, unknown> {
  return {
    type,
    ...(type === 'track' ? { event: 'Signup Clicked', properties: { value: 2, plan: null } } : {}),
    ...(type === 'page' || type === 'screen' ? { name: null, category: null, properties: { path: '/pricing' } } : {}),
    ...(type === 'identify' ? { traits: { email: null } } : {}),
    userId: null,
    anonymousId: 'anon-visitor-1',
    messageId,
    timestamp: new Date(T0).toISOString(),
    sentAt: null,
    integrations: {},
    context: { userAgent: null, page: { path: '/pricing', referrer: null }, library: { name: 'analytics.js', version: 'npm:next-1.84.3' } },
  };
}

const EVENT_NAME = { track: 'Signup Clicked', page: '$page', screen: '$screen', identify: '$identify' } as const;

/** Every ingest path with the body it takes: one event, or a batch of two. */
const CASES = [...INGEST_ENDPOINTS].map(([path, endpoint]) => {
  const route = endpoint.route;
  const type = route.kind === 'single' ? route.type : 'track';
  return { path, type, batch: route.kind !== 'single' };
});

describe('anonymous visitors: JSON nulls for absent fields are accepted on every route', () => {
  it('covers every ingest path', () => {
    expect(CASES.map((c) => c.path).sort()).toEqual(['/v1/b', '/v1/batch', '/v1/collect', '/v1/i', '/v1/identify', '/v1/p', '/v1/page', '/v1/s', '/v1/screen', '/v1/t', '/v1/track']);
  });

  it.each(CASES)('$path counts an event with "userId": null once, under its anonymousId', async ({ path, type, batch }) => {
    const edge = makeEdge({ COMMIT_DELAY_MS: '5' });
    const events = batch ? [anonymous(type, 'n-1'), anonymous(type, 'n-2')] : [anonymous(type, 'n-1')];
    const body = batch ? { batch: events, writeKey: 'wk_a', sentAt: null, context: null } : { ...events[0], writeKey: 'wk_a' };
    const res = await answered(edge, edge.app.request(path, postInit(JSON.stringify(body), { headers: { 'content-type': 'text/plain' } })));
    expect([200, 202]).toContain(res.status);
    expect(await json(res)).toMatchObject({ ok: true, accepted: events.length, rejected: [] });
    await edge.flusher.flushNow();
    const rows = sentRows(edge.partials).filter((r) => r.event === EVENT_NAME[type]);
    expect(rows.reduce((n, r) => n + r.partial.count, 0)).toBe(events.length);
    expect(edge.rejected.records).toEqual([]);
  });

  it('a null userId counts the visitor under the anonymousId, as if the field were absent', async () => {
    const edge = makeEdge();
    const withNull = anonymous('track', 'same-user-1');
    const { userId: _absent, ...without } = anonymous('track', 'same-user-2');
    for (const e of [withNull, without]) expect((await answered(edge, edge.app.request('/v1/t', postInit({ ...e, writeKey: 'wk_a' })))).status).toBe(200);
    await edge.flusher.flushNow();
    const rows = sentRows(edge.partials).filter((r) => r.event === 'Signup Clicked');
    expect(rows.reduce((n, r) => n + r.partial.count, 0)).toBe(2);
    // One user: both events carry the same pseudonym.
    expect(Math.round(hllEstimate(rows.map((r) => r.partial.users).reduce((a, b) => hllMerge(a, b))))).toBe(1);
  });

  it('an event whose ids are all null is refused with its reason: 400 on a single-event path, per event in a batch', async () => {
    const edge = makeEdge({ COMMIT_DELAY_MS: '5' });
    const noIds = { ...anonymous('track', 'no-ids'), anonymousId: null };
    const single = await answered(edge, edge.app.request('/v1/t', postInit({ ...noIds, writeKey: 'wk_a' })));
    expect(single.status).toBe(400);
    expect(await json(single)).toMatchObject({
      error: { code: 'invalid_event', errors: [{ path: '', message: 'needs a userId or an anonymousId (a non-empty string or a number; null counts as absent)' }] },
    });
    const inBatch = await answered(edge, edge.app.request('/v1/b', postInit({ batch: [anonymous('track', 'ok-1'), noIds], writeKey: 'wk_a' })));
    expect(inBatch.status).toBe(200);
    expect(await json(inBatch)).toMatchObject({ accepted: 1, rejected: [{ index: 1, messageId: 'no-ids', errors: [{ path: '', message: expect.stringContaining('null counts as absent') }] }] });
    // Both refusals reached the rejected sink, with the reason.
    expect(edge.rejected.records.map((r) => r.message_id)).toEqual(['no-ids', 'no-ids']);
  });
});
