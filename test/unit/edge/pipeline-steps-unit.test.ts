import { describe, expect, it } from 'vitest';
import { createDeduplicator } from '../../../edge/pipeline/dedup.ts';
import { eventName, extractDimensions, normalizeCountry, normalizePath, numericValue } from '../../../edge/pipeline/dimensions.ts';
import { createEventTimeStep } from '../../../edge/pipeline/event-time.ts';
import { redactEvent } from '../../../edge/pipeline/redact.ts';
import { drop, ok } from '../../../edge/pipeline/step-result.ts';
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

  it('falls back to receivedAt without a usable timestamp', () => {
    expect(step(ev({}), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R, source: 'received' }));
    expect(step(ev({ timestamp: '2024-02-30T00:00:00Z' }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R, source: 'received' }));
    expect(step(ev({ timestamp: '2024-02-29T00:00:00Z' }), { receivedAtMs: R }).value.source).toBe('client');
  });

  it('clamps event times more than maxFutureSkewMs ahead of receipt', () => {
    expect(step(ev({ timestamp: iso(R + 3_600_000) }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R + 300_000, source: 'clamped' }));
    expect(step(ev({ timestamp: iso(R + 299_000) }), { receivedAtMs: R })).toEqual(ok({ eventTimeMs: R + 299_000, source: 'client' }));
  });
});

describe('dedup step', () => {
  it('drops a repeated (site, messageId) and stays bounded', () => {
    const d = createDeduplicator({ capacity: 2 });
    expect(d.check('s', 'a')).toEqual(ok(null));
    expect(d.check('s', 'a')).toEqual(drop('duplicate_message_id'));
    expect(d.check('t', 'a')).toEqual(ok(null));
    expect(d.check('s', 'b')).toEqual(ok(null));
    expect(d.size).toBe(2);
    expect(d.check('s', 'a')).toEqual(ok(null)); // evicted first-in, first-out
    expect(d.check('s', undefined)).toEqual(ok(null));
    expect(d.check('s', undefined)).toEqual(ok(null));
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
    const dims = (e: Partial<SegmentEvent>) => extractDimensions({ type: 'page', userId: 'u', ...e } as SegmentEvent, ['path'], {});
    expect(dims({ context: { page: { path: '/a?b=c#d' } } })).toEqual([['path', '/a']]);
    expect(dims({ properties: { path: 'docs#top' } })).toEqual([['path', '/docs']]);
    expect(dims({ context: { page: { url: 'https://x.example/shop?id=1' } } })).toEqual([['path', '/shop']]);
    expect(dims({ context: { page: { url: 'not a url' } } })).toEqual([['path', 'unknown']]);
    expect(dims({})).toEqual([['path', 'unknown']]);
    expect(normalizePath('?only=query')).toBe('unknown');
    expect(normalizePath('/'.repeat(600)).length).toBe(512);
  });

  it('normalizes the trusted country and sorts dimensions by name', () => {
    expect(normalizeCountry(' de ')).toBe('DE');
    expect(normalizeCountry('Germany')).toBe('unknown');
    expect(normalizeCountry(undefined)).toBe('unknown');
    expect(extractDimensions({ type: 'track', event: 'e', userId: 'u' }, ['path', 'country'], { country: 'nl' })).toEqual([
      ['country', 'NL'],
      ['path', 'unknown'],
    ]);
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
