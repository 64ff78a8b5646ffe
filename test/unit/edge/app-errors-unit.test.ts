import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { json, makeEdge, postInit, send, sentRows, track } from './helpers.ts';

async function errorOf(res: Response): Promise<{ code: string; message: string; errors?: unknown }> {
  const body = await json(res);
  return body.error as { code: string; message: string };
}

describe('bad input gets a clear 4xx and loses nothing else', () => {
  it('accepts the valid events of a mixed batch and reports each invalid one', async () => {
    const edge = makeEdge();
    const batch = [
      track({ messageId: 'ok-1' }),
      track({ messageId: 'bad-type', event: 42 }),
      { type: 'track', messageId: 'no-user', event: 'x' },
      track({ messageId: 'ok-2' }),
      { type: 'track', messageId: 'no-event', userId: 'u' },
      track({ messageId: 'bad-time', timestamp: 'yesterday' }),
      { type: 'group', messageId: 'unknown-type', userId: 'u' },
      'not an object',
    ];
    const res = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ ok: true, accepted: 2, duplicates: 0 });
    expect(body.rejected).toEqual([
      { index: 1, messageId: 'bad-type', errors: [{ path: '/event', message: 'must be string' }] },
      { index: 2, messageId: 'no-user', errors: [{ path: '', message: 'needs a userId or an anonymousId (a non-empty string or a number; null counts as absent)' }] },
      { index: 4, messageId: 'no-event', errors: [{ path: '/event', message: 'is required' }] },
      { index: 5, messageId: 'bad-time', errors: [{ path: '/timestamp', message: 'must be an RFC 3339 date-time such as 2024-05-01T12:00:00.000Z' }] },
      { index: 6, messageId: 'unknown-type', errors: [{ path: '/type', message: 'must be one of track, page, screen, identify' }] },
      { index: 7, messageId: null, errors: [{ path: '', message: 'must be object' }] },
    ]);
    expect(sentRows(edge.partials).reduce((n, r) => n + r.partial.count, 0)).toBe(2);
    expect(edge.rejected.records.map((r) => [r.index, r.message_id, r.site])).toEqual([
      [1, 'bad-type', 'site-a'],
      [2, 'no-user', 'site-a'],
      [4, 'no-event', 'site-a'],
      [5, 'bad-time', 'site-a'],
      [6, 'unknown-type', 'site-a'],
      [7, null, 'site-a'],
    ]);
    expect(edge.rejected.records[0]?.errors).toEqual([{ path: '/event', message: 'must be string' }]);
    expect(edge.rejected.records[0]?.received_at).toBe('2024-05-01T12:00:00.000Z');
    // The redacted copy keeps the structure and the pseudonym, not the raw id.
    expect(edge.rejected.records[0]?.event).toMatchObject({ type: 'track', event: '[number]', messageId: 'bad-type', userPseudonym: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(edge.rejected.text()).not.toContain('"u1"');
  });

  it('answers an all-invalid batch with 200 and every event rejected', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', { batch: [{ type: 'track' }] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ accepted: 0, rejected: [{ index: 0 }] });
  });

  it('refuses an invalid single event with 400 invalid_event and reports it to the rejected sink', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/track', { userId: 'u1', messageId: 'm', event: '' }, { writeKey: 'wk_a' });
    expect(res.status).toBe(400);
    const err = await errorOf(res);
    expect(err.code).toBe('invalid_event');
    expect(err.errors).toEqual([{ path: '/event', message: 'must NOT have fewer than 1 characters' }]);
    await edge.flusher.flushNow();
    expect(edge.rejected.records).toHaveLength(1);
  });

  it.each([
    ['malformed JSON', '{"batch": [', 400, 'invalid_json'],
    ['an empty body', '', 400, 'invalid_json'],
    ['a JSON array body', '[1,2]', 400, 'invalid_json'],
    ['a batch that is not an array', '{"batch": {"type":"track"}}', 400, 'invalid_batch'],
    ['a missing batch', '{"events": []}', 400, 'invalid_batch'],
    ['a bad batch sentAt', '{"sentAt": "now", "batch": []}', 400, 'invalid_batch'],
  ])('answers %s with %s %s', async (_what, body, status, code) => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', body, { writeKey: 'wk_a' });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/json');
    const err = await errorOf(res);
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(20);
  });

  it('refuses a body over MAX_BODY_BYTES with 413, declared or streamed', async () => {
    const edge = makeEdge({ MAX_BODY_BYTES: '2048' });
    const big = { batch: [track({ properties: { blob: 'x'.repeat(3000) } })] };
    const res = await send(edge, '/v1/batch', big, { writeKey: 'wk_a' });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: 'payload_too_large' });

    // No Content-Length: the cap applies while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('x'.repeat(500)));
        c.close();
      },
    });
    const streamed = await edge.app.request('/v1/batch', { method: 'POST', body: stream, headers: { authorization: `Basic ${btoa('wk_a:')}` }, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
  });

  it('refuses more than MAX_EVENTS_PER_BATCH events with 413 too_many_events', async () => {
    const edge = makeEdge({ MAX_EVENTS_PER_BATCH: '3' });
    const res = await send(edge, '/v1/batch', { batch: [track(), track(), track(), track()] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(413);
    const err = await errorOf(res);
    expect(err.code).toBe('too_many_events');
    expect(err.message).toContain('MAX_EVENTS_PER_BATCH');
  });

  it('rejects an event over MAX_EVENT_BYTES inside a batch and refuses it as a single event', async () => {
    const edge = makeEdge({ MAX_EVENT_BYTES: '1024' });
    const big = track({ messageId: 'big', properties: { note: 'é'.repeat(600) } });
    const res = await send(edge, '/v1/batch', { batch: [track(), big] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ accepted: 1, rejected: [{ index: 1, messageId: 'big' }] });
    expect(JSON.stringify(body.rejected)).toContain('MAX_EVENT_BYTES');
    const single = await send(edge, '/v1/track', big, { writeKey: 'wk_a' });
    expect(single.status).toBe(413);
    expect(await errorOf(single)).toMatchObject({ code: 'event_too_large' });
  });

  it('accepts a gzip body', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', { batch: [track(), track()] }, { writeKey: 'wk_a', gzip: true });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ accepted: 2 });
  });

  it('stops inflating a gzip bomb at the cap with 413', async () => {
    const edge = makeEdge({ MAX_BODY_BYTES: '65536' });
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20), { level: 9 });
    expect(bomb.byteLength).toBeLessThan(65536);
    const res = await edge.app.request('/v1/batch', {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('wk_a:')}`, 'content-encoding': 'gzip' },
      body: new Uint8Array(bomb),
    });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).message).toContain('decompressed');
  });

  it.each([
    ['truncated gzip', () => new Uint8Array(gzipSync(JSON.stringify({ batch: [track()] }))).slice(0, 30)],
    ['bytes that are not gzip', () => new TextEncoder().encode('{"batch":[]}')],
  ])('answers %s with 400 invalid_gzip', async (_what, body) => {
    const edge = makeEdge();
    const res = await edge.app.request('/v1/batch', { method: 'POST', headers: { authorization: `Basic ${btoa('wk_a:')}`, 'content-encoding': 'gzip' }, body: body() });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'invalid_gzip' });
  });

  it('answers an unsupported Content-Encoding with 415', async () => {
    const edge = makeEdge();
    const res = await edge.app.request('/v1/batch', { method: 'POST', headers: { authorization: `Basic ${btoa('wk_a:')}`, 'content-encoding': 'br' }, body: '{}' });
    expect(res.status).toBe(415);
    expect(await errorOf(res)).toMatchObject({ code: 'unsupported_encoding' });
  });

  it('answers invalid UTF-8 with 400 invalid_utf8', async () => {
    const edge = makeEdge();
    const prefix = new TextEncoder().encode('{"batch":[{"type":"track","userId":"u","event":"');
    const bytes = new Uint8Array([...prefix, 0xc3, 0x28, ...new TextEncoder().encode('"}]}')]);
    const res = await send(edge, '/v1/batch', bytes, { writeKey: 'wk_a' });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'invalid_utf8' });
  });

  it('answers nesting deeper than 32 with 400 nesting_too_deep, however deep', async () => {
    const edge = makeEdge();
    const deep = (n: number) => `{"batch":[{"type":"track","userId":"u","event":"e","properties":{"a":${'['.repeat(n)}${']'.repeat(n)}}}]}`;
    // 4 levels are used by body, batch, event and properties: 28 more arrays is exactly 32.
    expect((await send(edge, '/v1/batch', deep(28), { writeKey: 'wk_a' })).status).toBe(200);
    for (const n of [29, 100_000]) {
      const res = await send(edge, '/v1/batch', deep(n), { writeKey: 'wk_a', headers: {} });
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ code: 'nesting_too_deep' });
    }
  });

  it.each([
    ['__proto__ in properties', '{"batch":[{"type":"track","userId":"u","event":"e","properties":{"__proto__":{"admin":true}}}]}', '/batch/0/properties'],
    ['constructor in context', '{"batch":[{"type":"track","userId":"u","event":"e","context":{"constructor":{"prototype":{}}}}]}', '/batch/0/context'],
    ['prototype at the top', '{"prototype":1,"batch":[]}', '/'],
    ['__proto__ spelled with escapes', '{"batch":[{"type":"track","userId":"u","event":"e","properties":{"\\u005f_proto__":1}}]}', '/batch/0/properties'],
  ])('refuses %s with 400 forbidden_key', async (_what, body, path) => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', body, { writeKey: 'wk_a' });
    expect(res.status).toBe(400);
    const err = await errorOf(res);
    expect(err.code).toBe('forbidden_key');
    expect(err.message).toContain(` at ${path} `);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(edge.accumulator.rowCount).toBe(0);
  });

  it('accepts property values that merely contain the forbidden words', async () => {
    const edge = makeEdge();
    const res = await send(edge, '/v1/batch', { batch: [track({ properties: { note: 'constructor prototype __proto__ \u00e9' } })] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
  });

  it('returns 503 overloaded with Retry-After when too many rows are buffered', async () => {
    const edge = makeEdge({ MAX_PENDING_ROWS: '2', DIMENSIONS: 'path' });
    edge.partials.failNext(100);
    const res = await send(edge, '/v1/batch', { batch: [track({ event: 'a' }), track({ event: 'b' })] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(503);
    const next = await edge.app.request('/v1/batch', postInit({ batch: [track()] }, { writeKey: 'wk_a' }));
    expect(next.status).toBe(503);
    expect(next.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await errorOf(next)).toMatchObject({ code: 'overloaded' });
    expect((await edge.app.request('/health')).status).toBe(503);
  });
});
