import { beforeEach, describe, expect, it } from 'vitest';
import { allStats, drainShards, post, track, worker } from './helpers.ts';

// Every ingest route of the Workers entry inside workerd: same app and answers as on Node, with
// the events acknowledged only once they are in Durable Object storage.
const pendingTotal = async (): Promise<number> => (await allStats()).reduce((n, s) => n + s.pendingEvents, 0);

describe('Workers edge routes', () => {
  beforeEach(async () => {
    await drainShards();
  });

  it('POST /v1/batch stores every valid event in the shards before answering 200', async () => {
    const batch = Array.from({ length: 40 }, () => track());
    const res = await post('/v1/batch', { batch }, { writeKey: 'wk_demo' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, accepted: 40, duplicates: 0, rejected: [] });
    expect(await pendingTotal()).toBe(40);
    // Spread over several shards (hash of site + messageId).
    expect((await allStats()).filter((s) => s.pendingEvents > 0).length).toBeGreaterThan(1);
  });

  it.each([
    ['/v1/track', { event: 'signup', userId: 'u1' }],
    ['/v1/page', { name: 'Home', anonymousId: 'a1', context: { page: { path: '/home' } } }],
    ['/v1/screen', { name: 'Settings', userId: 'u2' }],
    ['/v1/identify', { userId: 'u3', traits: { plan: 'pro' } }],
  ])('POST %s answers 200 once the event is stored', async (path, event) => {
    const res = await post(path, { ...event, messageId: `single-${path}-${Date.now()}` }, { writeKey: 'wk_demo' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, accepted: 1 });
    expect(await pendingTotal()).toBe(1);
  });

  it('POST /v1/collect answers 202 with CORS at once (text/plain beacon) and stores the events after', async () => {
    const res = await post('/v1/collect', JSON.stringify({ writeKey: 'wk_demo', batch: [track(), track()] }), { headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toMatchObject({ ok: true, accepted: 2 });
    // ctx.waitUntil delivers them; poll briefly instead of sleeping a fixed time.
    for (let i = 0; i < 50 && (await pendingTotal()) < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await pendingTotal()).toBe(2);
  });

  it('OPTIONS /v1/collect answers the CORS preflight', async () => {
    const res = await worker().fetch('http://edge.test/v1/collect', { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('GET /health reports every shard', async () => {
    const res = await worker().fetch('http://edge.test/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; runtime: string; shards: Array<{ shard: string; overloaded: boolean }> };
    expect(body).toMatchObject({ ok: true, runtime: 'workerd', edgeId: 'workers-dev' });
    expect(body.shards).toHaveLength(4);
  });

  it('refuses a missing or unknown write key with 401, and takes the key from the body too', async () => {
    const none = await post('/v1/track', { event: 'e', userId: 'u' });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: 'unknown_write_key' } });
    const wrong = await post('/v1/track', { event: 'e', userId: 'u' }, { writeKey: 'wk_nope' });
    expect(wrong.status).toBe(401);
    const inBody = await post('/v1/track', { event: 'e', userId: 'u', writeKey: 'wk_other' });
    expect(inBody.status).toBe(200);
    expect(await pendingTotal()).toBe(1);
  });

  it('answers bad input with a JSON 4xx and keeps the valid events of a mixed batch', async () => {
    const notJson = await post('/v1/batch', '{"batch": [', { writeKey: 'wk_demo' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { code: 'invalid_json' } });
    const proto = await post('/v1/track', '{"event":"e","userId":"u","__proto__":{"x":1}}', { writeKey: 'wk_demo' });
    expect(proto.status).toBe(400);
    expect(await proto.json()).toMatchObject({ error: { code: 'forbidden_key' } });
    const invalidSingle = await post('/v1/track', { userId: 'u' }, { writeKey: 'wk_demo' });
    expect(invalidSingle.status).toBe(400);

    const mixed = await post('/v1/batch', { batch: [track(), { type: 'track', messageId: 'bad-1', userId: 'x@example.com' }, track()] }, { writeKey: 'wk_demo' });
    expect(mixed.status).toBe(200);
    expect(await mixed.json()).toMatchObject({ accepted: 2, rejected: [{ index: 1, messageId: 'bad-1' }] });
    expect(await pendingTotal()).toBe(2);
    // The redacted rejected records wait in a shard for the gateway's `rejected` endpoint.
    expect((await allStats()).reduce((n, s) => n + s.rejectedRecords, 0)).toBe(2);
  });

  it('counts a retried messageId once, durably, across requests', async () => {
    const event = track();
    for (let i = 0; i < 3; i++) expect((await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' })).status).toBe(200);
    expect(await pendingTotal()).toBe(1);
  });

  it('keeps its ingest state per isolate: a retry in a later request is reported as a duplicate', async () => {
    const event = track();
    const first = (await (await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' })).json()) as { accepted: number; duplicates: number };
    const retry = (await (await post('/v1/batch', { batch: [event] }, { writeKey: 'wk_demo' })).json()) as { accepted: number; duplicates: number };
    expect(first).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(retry).toMatchObject({ duplicates: 1 });
  });

  it('takes an anonymous visitor\'s events with "userId": null (analytics.js) on /v1/t and /v1/b, and refuses all-null ids with the reason', async () => {
    // What @segment/analytics-next sends before identify(): JSON null means the field is absent.
    const anonymous = (messageId: string): Record<string, unknown> => ({ type: 'track', event: 'Signup Clicked', userId: null, anonymousId: 'anon-1', messageId, sentAt: null, context: { page: { referrer: null } }, writeKey: 'wk_demo' });
    const single = await post('/v1/t', JSON.stringify(anonymous(`null-t-${Date.now()}`)), { headers: { 'content-type': 'text/plain' } });
    expect(single.status).toBe(200);
    expect(single.headers.get('access-control-allow-origin')).toBe('*');
    expect(await single.json()).toMatchObject({ ok: true, accepted: 1, rejected: [] });
    const batch = await post('/v1/b', JSON.stringify({ batch: [anonymous(`null-b1-${Date.now()}`), anonymous(`null-b2-${Date.now()}`)], writeKey: 'wk_demo', context: null }), { headers: { 'content-type': 'text/plain' } });
    expect(batch.status).toBe(200);
    expect(await batch.json()).toMatchObject({ ok: true, accepted: 2, rejected: [] });
    expect(await pendingTotal()).toBe(3);

    const noIds = await post('/v1/t', JSON.stringify({ ...anonymous('null-ids'), anonymousId: null }), { headers: { 'content-type': 'text/plain' } });
    expect(noIds.status).toBe(400);
    expect(await noIds.json()).toMatchObject({ error: { code: 'invalid_event', errors: [{ path: '', message: expect.stringContaining('null counts as absent') }] } });
    expect(await pendingTotal()).toBe(3);
  });

  it('answers 404 with a JSON error for an unknown path', async () => {
    const res = await post('/v1/nope', {}, { writeKey: 'wk_demo' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});
