/**
 * Issue #3's bad-input list, each case held to the same contract (ARCHITECTURE §3.7): the documented
 * status with a JSON error body, no crash, other requests and valid sibling events still
 * counted, and every rejected event recorded with its reason.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { answered, basic, json, makeEdge, send, sentRows, track, type TestEdge } from './helpers.ts';

/** Status per error code, as docs/EDGE.md documents it. */
const DOCUMENTED = new Map(
  [...readFileSync(new URL('../../../docs/EDGE.md', import.meta.url), 'utf8').matchAll(/^\| (\d{3}) \| `([a-z0-9_]+)` \|/gm)].map((m) => [m[2] as string, Number(m[1])]),
);

const enc = new TextEncoder();
const LIMITS = { MAX_BODY_BYTES: '65536', MAX_EVENTS_PER_BATCH: '10', MAX_EVENT_BYTES: '2048' };

interface BadRequest {
  path?: string;
  body: Uint8Array | string;
  headers?: Record<string, string>;
  writeKey?: string | null;
}

const batchText = (events: unknown[]) => JSON.stringify({ batch: events });

const REQUEST_CASES: Array<[string, () => BadRequest, number, string]> = [
  ['malformed JSON', () => ({ body: '{"batch": [{"type":"track",' }), 400, 'invalid_json'],
  ['an empty body', () => ({ body: '' }), 400, 'invalid_json'],
  ['a body of the wrong type (array)', () => ({ body: '[{"type":"track"}]' }), 400, 'invalid_json'],
  ['a body of the wrong type (number)', () => ({ body: '42' }), 400, 'invalid_json'],
  ['batch of the wrong type', () => ({ body: '{"batch": "all of them"}' }), 400, 'invalid_batch'],
  ['batch sentAt of the wrong type', () => ({ body: '{"sentAt": 5, "batch": []}' }), 400, 'invalid_batch'],
  ['the required batch missing', () => ({ body: '{"events": []}' }), 400, 'invalid_batch'],
  ['a single event of the wrong type', () => ({ path: '/v1/track', body: JSON.stringify({ userId: 'u', event: ['x'] }) }), 400, 'invalid_event'],
  ['a single event missing required fields', () => ({ path: '/v1/track', body: JSON.stringify({ event: 'x' }) }), 400, 'invalid_event'],
  ['an oversized body', () => ({ body: batchText([track({ properties: { blob: 'x'.repeat(70_000) } })]) }), 413, 'payload_too_large'],
  ['too many events', () => ({ body: batchText(Array.from({ length: 11 }, () => track())) }), 413, 'too_many_events'],
  ['an oversized single event', () => ({ path: '/v1/track', body: JSON.stringify(track({ properties: { blob: 'x'.repeat(3000) } })) }), 413, 'event_too_large'],
  ['a gzip bomb', () => ({ body: new Uint8Array(gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20), { level: 9 })), headers: { 'content-encoding': 'gzip' } }), 413, 'payload_too_large'],
  ['truncated gzip', () => ({ body: new Uint8Array(gzipSync(batchText([track()]))).slice(0, 25), headers: { 'content-encoding': 'gzip' } }), 400, 'invalid_gzip'],
  ['gzip header on plain bytes', () => ({ body: batchText([track()]), headers: { 'content-encoding': 'gzip' } }), 400, 'invalid_gzip'],
  ['an unsupported encoding', () => ({ body: batchText([track()]), headers: { 'content-encoding': 'br' } }), 415, 'unsupported_encoding'],
  ['invalid UTF-8', () => ({ body: new Uint8Array([...enc.encode('{"batch":[{"type":"track","userId":"u","event":"'), 0xff, 0xfe, ...enc.encode('"}]}')]) }), 400, 'invalid_utf8'],
  ['an overlong UTF-8 encoding', () => ({ body: new Uint8Array([...enc.encode('{"batch":[],"x":"'), 0xc0, 0xaf, ...enc.encode('"}')]) }), 400, 'invalid_utf8'],
  ['deep nesting', () => ({ body: `{"batch":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}` }), 400, 'nesting_too_deep'],
  ['a __proto__ key', () => ({ body: '{"batch":[{"type":"track","userId":"u","event":"e","properties":{"__proto__":{"polluted":true}}}]}' }), 400, 'forbidden_key'],
  ['a constructor key', () => ({ body: '{"batch":[{"type":"track","userId":"u","event":"e","constructor":{"prototype":{"polluted":true}}}]}' }), 400, 'forbidden_key'],
  ['an escaped __proto__ key', () => ({ body: '{"\\u005f\\u005fproto__":{"polluted":true},"batch":[]}' }), 400, 'forbidden_key'],
  ['an unknown write key', () => ({ body: batchText([track()]), writeKey: 'wk_unknown' }), 401, 'unknown_write_key'],
  ['no write key', () => ({ body: batchText([track()]), writeKey: null }), 401, 'unknown_write_key'],
  ['a write key named like a prototype member', () => ({ body: JSON.stringify({ writeKey: 'hasOwnProperty', batch: [track()] }), writeKey: null }), 401, 'unknown_write_key'],
];

function requestOf(bad: BadRequest): Request {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...bad.headers };
  if (bad.writeKey !== null) headers.authorization = basic(bad.writeKey ?? 'wk_a');
  return new Request(`http://edge.test${bad.path ?? '/v1/batch'}`, { method: 'POST', headers, body: bad.body as BodyInit });
}

/** Sends a request and flushes until it is answered (synchronous endpoints wait for the group commit). */
function answer(edge: TestEdge, request: Request): Promise<Response> {
  return answered(edge, edge.app.fetch(request));
}

const counted = (edge: TestEdge) => sentRows(edge.partials).reduce((n, r) => n + r.partial.count, 0);

describe('bad requests: documented status, JSON error, nothing else lost', () => {
  it('documents every code the cases expect', () => {
    for (const [, , status, code] of REQUEST_CASES) expect(DOCUMENTED.get(code), code).toBe(status);
  });

  it.each(REQUEST_CASES)('%s -> %s %s', async (_what, build, status, code) => {
    const edge = makeEdge(LIMITS);
    // Events accepted before the bad request stay counted.
    expect((await send(edge, '/v1/batch', { batch: [track({ messageId: 'before' })] }, { writeKey: 'wk_a' })).status).toBe(200);

    // The bad request races a good one: the good one is counted either way.
    const [bad, good] = await Promise.all([answer(edge, requestOf(build())), send(edge, '/v1/batch', { batch: [track({ messageId: 'sibling' })] }, { writeKey: 'wk_a' })]);
    expect(bad.status).toBe(status);
    expect(bad.headers.get('content-type')).toContain('application/json');
    const body = (await json(bad)) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(30);
    expect(good.status).toBe(200);

    const after = await send(edge, '/v1/batch', { batch: [track({ messageId: 'after' })] }, { writeKey: 'wk_a' });
    expect(after.status).toBe(200);
    expect(counted(edge)).toBe(3);
    const health = await json(await edge.app.request('/health'));
    expect(health).toMatchObject({ ok: true, refusedRequests: { [code]: 1 } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A refused single event is still reported to the rejected topic, with its reason.
    if (code === 'invalid_event') {
      expect(edge.rejected.records).toEqual([expect.objectContaining({ site: 'site-a', index: 0, errors: [expect.objectContaining({ path: expect.any(String), message: expect.any(String) })] })]);
    } else {
      expect(edge.rejected.records).toEqual([]);
    }
  });
});

describe('bad events inside a batch: siblings counted, each rejected with its reason', () => {
  const BAD_EVENTS: Array<[string, unknown, Array<{ path: string; message: string | RegExp }>]> = [
    ['event name of the wrong type', track({ event: 42 }), [{ path: '/event', message: 'must be string' }]],
    ['user id of the wrong type', track({ userId: { id: 1 } }), [{ path: '/userId', message: 'must be string,number' }]],
    ['timestamp of the wrong type', track({ timestamp: 1714564800 }), [{ path: '/timestamp', message: 'must be string' }]],
    ['properties of the wrong type', track({ properties: 'value=3' }), [{ path: '/properties', message: 'must be object' }]],
    ['context of the wrong type', track({ context: ['ip'] }), [{ path: '/context', message: 'must be object' }]],
    ['an event that is not an object', 'track signup', [{ path: '', message: 'must be object' }]],
    ['a missing type', { event: 'e', userId: 'u', messageId: 'no-type' }, [{ path: '/type', message: 'is required' }]],
    ['a missing event name', { type: 'track', userId: 'u', messageId: 'no-event' }, [{ path: '/event', message: 'is required' }]],
    ['no user id at all', { type: 'track', event: 'e', messageId: 'anonymous' }, [{ path: '', message: 'needs a userId or an anonymousId (a non-empty string or a number; null counts as absent)' }]],
    ['an unknown type', { type: 'alias', userId: 'u', previousId: 'v' }, [{ path: '/type', message: 'must be one of track, page, screen, identify' }]],
    ['an impossible calendar date (February 30)', track({ timestamp: '2024-02-30T10:00:00Z' }), [{ path: '/timestamp', message: '"2024-02-30T10:00:00Z" is not a calendar date-time: send an RFC 3339 time such as 2026-11-22T10:00:00.000Z' }]],
    ['an impossible sentAt (April 31)', track({ timestamp: '2024-05-01T11:59:00Z', sentAt: '2024-04-31T12:00:00Z' }), [{ path: '/sentAt', message: /^sentAt "2024-04-31T12:00:00Z" is not a calendar date-time/ }]],
    [
      'a sentAt in year 9999 (the corrected time would fall before 1970)',
      track({ timestamp: '2024-05-01T11:59:00Z', sentAt: '9999-12-31T23:59:59Z' }),
      [
        {
          path: '/sentAt',
          message: 'the event time (timestamp "2024-05-01T11:59:00Z" moved by receivedAt − sentAt, sentAt "9999-12-31T23:59:59Z") is before 1970-01-01T00:00:00Z: check the client clock and its sentAt',
        },
      ],
    ],
    ['an oversized event', track({ properties: { blob: 'x'.repeat(3000) } }), [{ path: '', message: /^event is \d+ bytes; the limit is 2048 \(MAX_EVENT_BYTES\)/ }]],
  ];

  it.each(BAD_EVENTS)('%s', async (_what, badEvent, errors) => {
    const edge = makeEdge(LIMITS);
    const res = await send(edge, '/v1/batch', { batch: [track({ messageId: 'first' }), badEvent, track({ messageId: 'last' })] }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ ok: true, accepted: 2, rejected: [{ index: 1, errors: errors.map((e) => ({ path: e.path, message: typeof e.message === 'string' ? e.message : expect.stringMatching(e.message) })) }] });
    expect(counted(edge)).toBe(2);
    expect(edge.rejected.records).toHaveLength(1);
    expect(edge.rejected.records[0]).toMatchObject({ site: 'site-a', index: 1, received_at: '2024-05-01T12:00:00.000Z', errors: (body.rejected as Array<{ errors: unknown }>)[0]?.errors });
  });
});
