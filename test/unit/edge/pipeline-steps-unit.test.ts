import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMemoryDeduplicator } from '../../../edge/pipeline/dedup.ts';
import { createEnrichStep, eventName, normalizeCountry, normalizePath, numericValue } from '../../../edge/pipeline/dimensions.ts';
import { createEventTimeStep, parseTime } from '../../../edge/pipeline/event-time.ts';
import { redactEvent } from '../../../shared/privacy/redact.ts';
import { ok } from '../../../edge/pipeline/step-result.ts';
import type { SegmentEvent } from '../../../schemas/validators.ts';

const R = Date.parse('2024-05-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('event time step', () => {
  const step = createEventTimeStep({ maxFutureSkewMs: 300_000 });
  const ev = (o: Partial<SegmentEvent>): SegmentEvent => ({ type: 'track', event: 'e', userId: 'u', ...o }) as SegmentEvent;

  it('corrects the client timestamp by receivedAt - sentAt (Segment rule)', () => {
    // Client clock 2 h behind: sent "10:00:05", received 12:00:05 real time.
    expect(step(ev({ timestamp: iso(R - 7_200_000), sentAt: iso(R - 7_200_000 + 5000) }), { receivedAtMs: R + 5000 })).toEqual(ok({ eventTimeMs: R, source: 'corrected' }));
  });

  it('uses the batch sentAt when the event has none, and originalTimestamp when timestamp is absent', () => {
    expect(step(ev({ originalTimestamp: iso(R + 60_000) }), { receivedAtMs: R + 1000, batchSentAt: iso(R + 61_000) })).toEqual(ok({ eventTimeMs: R, source: 'corrected' }));
  });

  it('trusts the timestamp as-is without sentAt (server SDKs, historical imports)', () => {
    expect(step(ev({ timestamp: iso(R - 86_400_000) }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R - 86_400_000, source: 'client' }));
  });

  it('falls back to receivedAt without a timestamp', () => {
    expect(step(ev({}), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R, source: 'received' }));
    expect(step(ev({ timestamp: '2024-02-29T00:00:00Z' }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: Date.UTC(2024, 1, 29), source: 'client' }));
  });

  it('rejects a timestamp or sentAt that names no calendar instant, with the field and a fix', () => {
    const notADate = (path: string, text: string) => ({ kind: 'reject', reason: 'invalid_event_time', errors: [{ path, message: expect.stringContaining(`${JSON.stringify(text)} is not a calendar date-time`) }] });
    expect(step(ev({ timestamp: '2024-02-30T00:00:00Z' }), { receivedAtMs: R })).toEqual(notADate('/timestamp', '2024-02-30T00:00:00Z'));
    expect(step(ev({ timestamp: '2023-02-29T00:00:00Z' }), { receivedAtMs: R })).toEqual(notADate('/timestamp', '2023-02-29T00:00:00Z'));
    expect(step(ev({ originalTimestamp: '2024-06-31T00:00:00Z' }), { receivedAtMs: R })).toEqual(notADate('/originalTimestamp', '2024-06-31T00:00:00Z'));
    expect(step(ev({ timestamp: iso(R), sentAt: '2024-02-30T00:00:00.000+01:00' }), { receivedAtMs: R })).toEqual(notADate('/sentAt', '2024-02-30T00:00:00.000+01:00'));
    expect(step(ev({ timestamp: iso(R) }), { receivedAtMs: R, batchSentAt: '2024-11-31T00:00:00Z' })).toEqual(notADate('/sentAt', '2024-11-31T00:00:00Z'));
  });

  it('rejects an event time before 1970 instead of writing a window ClickHouse cannot hold (sentAt in year 9999)', () => {
    const r = step(ev({ timestamp: iso(R - 60_000), sentAt: '9999-12-31T23:59:59.000Z' }), { receivedAtMs: R });
    expect(r).toEqual({ kind: 'reject', reason: 'invalid_event_time', errors: [{ path: '/sentAt', message: expect.stringMatching(/is before 1970-01-01T00:00:00Z: check the client clock and its sentAt$/) }] });
    expect(step(ev({ timestamp: '1969-12-31T23:59:59.999Z' }), { receivedAtMs: R })).toMatchObject({ kind: 'reject', errors: [{ path: '/timestamp' }] });
    expect(step(ev({ timestamp: '1970-01-01T00:00:00.000Z' }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: 0, source: 'client' }));
    // A client clock that is years off on both fields is still corrected (the Segment rule).
    expect(step(ev({ timestamp: '9999-12-31T23:58:59.000Z', sentAt: '9999-12-31T23:59:59.000Z' }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R - 60_000, source: 'corrected' }));
    // Far-future times without sentAt are clamped, as before.
    expect(step(ev({ timestamp: '9999-12-31T23:59:59.000Z' }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R + 300_000, source: 'clamped' }));
  });

  it('clamps event times more than maxFutureSkewMs ahead of receipt', () => {
    expect(step(ev({ timestamp: iso(R + 3_600_000) }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R + 300_000, source: 'clamped' }));
    expect(step(ev({ timestamp: iso(R + 299_000) }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R + 299_000, source: 'client' }));
  });
});

describe('in-memory dedup (Deno)', () => {
  const one = (d: ReturnType<typeof createMemoryDeduplicator>, site: string, id: string | undefined): boolean | undefined => {
    const r = d.claim(site, [id]);
    return r.kind === 'ok' ? r.duplicate[0] : undefined;
  };

  it('drops a repeated (site, messageId) and stays bounded', () => {
    const d = createMemoryDeduplicator({ capacity: 2 });
    expect(one(d, 's', 'a')).toBe(false);
    expect(one(d, 's', 'a')).toBe(true);
    expect(one(d, 't', 'a')).toBe(false);
    expect(one(d, 's', 'b')).toBe(false);
    expect(d.size).toBe(2);
    expect(one(d, 's', 'a')).toBe(false); // evicted first-in, first-out
    expect(one(d, 's', undefined)).toBe(false);
    expect(one(d, 's', undefined)).toBe(false);
    expect(d.claim('s', ['x', 'x', undefined])).toEqual({ kind: 'ok', duplicate: [false, true, false] });
  });

  it('remembers exactly the last `capacity` ids, long after it first filled up', () => {
    const d = createMemoryDeduplicator({ capacity: 100 });
    for (let i = 0; i < 10_000; i++) one(d, 's', `m${i}`);
    expect(d.size).toBe(100);
    expect(one(d, 's', 'm9900')).toBe(true);
    expect(one(d, 's', 'm9899')).toBe(false);
  });
});

describe('dimensions', () => {
  it('names events and reads values', () => {
    expect(eventName({ type: 'track', event: 'Buy', userId: 'u' })).toBe('Buy');
    expect(eventName({ type: 'page', userId: 'u' })).toBe('$page');
    expect(eventName({ type: 'screen', userId: 'u' })).toBe('$screen');
    expect(eventName({ type: 'identify', userId: 'u' })).toBe('$identify');
    expect(numericValue({ type: 'track', event: 'e', userId: 'u', properties: { value: 3.5, revenue: 9 } })).toBe(3.5);
    expect(numericValue({ type: 'track', event: 'e', userId: 'u', properties: { value: '3', revenue: 9 } })).toBe(9);
    expect(numericValue({ type: 'track', event: 'e', userId: 'u', properties: { value: '3' } })).toBeUndefined();
  });

  it('takes the path from context.page, properties.path or the URL, without query or fragment', () => {
    const enrich = createEnrichStep({ dimensions: ['path'], botPolicy: 'keep', pathQueryAllowlist: [] });
    const dims = (e: Partial<SegmentEvent>) => enrich({ type: 'page', userId: 'u', ...e } as SegmentEvent, {});
    expect(dims({ context: { page: { path: '/a?b=c#d' } } })).toEqual(ok([['path', '/a']]));
    expect(dims({ properties: { path: 'docs#top' } })).toEqual(ok([['path', '/docs']]));
    expect(dims({ context: { page: { url: 'https://x.example/shop?id=1' } } })).toEqual(ok([['path', '/shop']]));
    expect(dims({ context: { page: { url: 'not a url' } } })).toEqual(ok([['path', 'unknown']]));
    expect(dims({})).toEqual(ok([['path', 'unknown']]));
    expect(normalizePath('?only=query')).toBe('unknown');
    expect(normalizePath(`/${'a'.repeat(600)}`).length).toBe(512);
  });

  it('normalizes the trusted country and sorts dimensions by name', () => {
    expect(normalizeCountry(' de ')).toBe('DE');
    expect(normalizeCountry('Germany')).toBe('unknown');
    expect(normalizeCountry(undefined)).toBe('unknown');
    const enrich = createEnrichStep({ dimensions: ['path', 'country'], botPolicy: 'keep', pathQueryAllowlist: [] });
    expect(enrich({ type: 'track', event: 'e', userId: 'u' }, { country: 'nl' })).toEqual(ok([
      ['country', 'NL'],
      ['path', 'unknown'],
    ]));
  });
});

describe('redaction of rejected events', () => {
  it('keeps structure and message identity, replaces personal values by their type', () => {
    const redacted = redactEvent(
      {
        type: 'track',
        event: 42,
        messageId: 'm1',
        userId: 'alice',
        anonymousId: 'anon',
        writeKey: 'wk_secret',
        properties: { email: 'a@b.c', n: 1, ok: true, tags: ['x', 'y'], nested: { deeper: { deepest: { gone: 's' } } } },
        context: { ip: '1.2.3.4', library: { name: 'analytics-node', version: '2.0.0' }, page: { path: '/p?q=1', url: 'https://x/p?q=1' } },
      },
      'abcdef0123456789',
    );
    expect(redacted).toEqual({
      type: 'track',
      event: '[number]',
      messageId: 'm1',
      properties: { email: '[string:5]', n: '[number]', ok: '[boolean]', tags: ['[string:1]', '[string:1]'], nested: { deeper: { deepest: '[object]' } } },
      context: { ip: '[string:7]', library: { name: 'analytics-node', version: '2.0.0' }, page: { path: '/p', url: '[string:15]' } },
      userPseudonym: 'abcdef0123456789',
    });
    expect(redactEvent('just a string')).toBe('[string:13]');
  });
});

describe('RFC 3339 parsing (the event-time hot path)', () => {
  const slow = (v: string): number | undefined => {
    const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
    if (ymd === null) return undefined;
    if (Number(ymd[3]) > new Date(Date.UTC(Number(ymd[1]), Number(ymd[2]), 0)).getUTCDate()) return undefined;
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? ms : undefined;
  };

  it.each([
    '2024-05-01T12:00:00Z',
    '2024-05-01t12:00:00.5z',
    '2024-05-01T12:00:00.123456789Z',
    '2024-05-01T12:00:00.999+01:30',
    '2024-05-01T00:00:00-23:59',
    '2024-02-29T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-05-01T12:00:60Z',
    '2024-05-01T24:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-05-01T12:00:00',
    '2024-05-01T12:00:00.Z',
    '2024-05-01T12:00:00+0100',
    '2024-05-01 12:00:00Z',
    '0050-05-01T12:00:00Z',
  ])('%s agrees with Date.parse', (v) => {
    expect(parseTime(v)).toBe(slow(v));
  });

  it('agrees with Date.parse on any RFC 3339 date-time (property)', () => {
    const two = (n: number) => String(n).padStart(2, '0');
    fc.assert(
      fc.property(
        fc.record({
          y: fc.integer({ min: 1000, max: 9999 }),
          mo: fc.integer({ min: 1, max: 12 }),
          d: fc.integer({ min: 1, max: 31 }),
          h: fc.integer({ min: 0, max: 23 }),
          mi: fc.integer({ min: 0, max: 59 }),
          s: fc.integer({ min: 0, max: 59 }),
          frac: fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
          zone: fc.oneof(fc.constant('Z'), fc.record({ sign: fc.constantFrom('+', '-'), h: fc.integer({ min: 0, max: 23 }), m: fc.integer({ min: 0, max: 59 }) }).map((z) => `${z.sign}${two(z.h)}:${two(z.m)}`)),
        }),
        (t) => {
          const v = `${t.y}-${two(t.mo)}-${two(t.d)}T${two(t.h)}:${two(t.mi)}:${two(t.s)}${t.frac === undefined ? '' : `.${t.frac}`}${t.zone}`;
          return parseTime(v) === slow(v);
        },
      ),
    );
  });
});
