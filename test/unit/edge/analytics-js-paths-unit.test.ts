import { describe, expect, it } from 'vitest';
import { json, makeEdge, sentRows, T0, track } from './helpers.ts';

// analytics.js posts to short paths, cross-origin, as text/plain with the writeKey in the body.
function analyticsJsPost(path: string, body: unknown): RequestInit & { path: string } {
  return { path, method: 'POST', headers: { 'content-type': 'text/plain', origin: 'https://shop.example' }, body: JSON.stringify(body) };
}

describe('analytics.js short paths', () => {
  it.each([
    ['/v1/t', { ...track({ event: 'Order Completed' }), writeKey: 'wk_a' }, 'Order Completed'],
    ['/v1/p', { type: 'page', name: 'Home', anonymousId: 'a1', messageId: 'p-1', timestamp: new Date(T0).toISOString(), writeKey: 'wk_a' }, '$page'],
    ['/v1/i', { type: 'identify', userId: 'u9', messageId: 'i-1', timestamp: new Date(T0).toISOString(), writeKey: 'wk_a' }, '$identify'],
  ])('%s counts the event like its long form and answers with CORS', async (path, body, event) => {
    // The edge's own commit delay flushes once the request waits, as in production.
    const edge = makeEdge({ COMMIT_DELAY_MS: '5' });
    const { path: p, ...init } = analyticsJsPost(path, body);
    const res = await edge.app.request(p, init);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(sentRows(edge.partials).filter((r) => r.event === event).reduce((n, r) => n + r.partial.count, 0)).toBe(1);
  });

  it('/v1/b takes a batch, and refusals carry CORS too so the library can read them', async () => {
    const edge = makeEdge({ COMMIT_DELAY_MS: '5' });
    const { path, ...init } = analyticsJsPost('/v1/b', { batch: [track(), track({ userId: 'u2' })], writeKey: 'wk_a' });
    const res = await edge.app.request(path, init);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ ok: true, accepted: 2 });

    const { path: p2, ...bad } = analyticsJsPost('/v1/t', { ...track(), writeKey: 'wk_unknown' });
    const refused = await edge.app.request(p2, bad);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('answers a preflight for clients that send one', async () => {
    const res = await makeEdge().app.request('/v1/t', { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    // analytics.js sends Authorization, and X-Retry-Count on retries: a header not allowed here
    // makes the browser block the request.
    expect(res.headers.get('access-control-allow-headers')?.split(/,\s*/)).toEqual(expect.arrayContaining(['content-type', 'authorization', 'x-retry-count']));
  });
});
