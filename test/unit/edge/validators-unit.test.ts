import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { splitBatchErrors, toFieldErrors, validateBatch, validateEvent, validateIdentify, validatePage, validateScreen, validateTrack } from '../../../schemas/validators.ts';

describe('generated event validators', () => {
  it('accepts Segment-spec events of each type', () => {
    const base = { messageId: 'm', timestamp: '2024-05-01T12:00:00.123+02:00', sentAt: '2024-05-01t10:00:01z', context: { ip: '1.2.3.4', page: { path: '/', url: 'https://x/' }, library: { name: 'analytics-node', version: '1' } }, integrations: {}, _metadata: { bundled: [] } };
    expect(validateTrack({ ...base, type: 'track', event: 'Order Completed', userId: 42, properties: { revenue: 9.5 } })).toBe(true);
    expect(validatePage({ ...base, type: 'page', anonymousId: 'a', name: 'Home' })).toBe(true);
    expect(validateScreen({ ...base, type: 'screen', anonymousId: 'a' })).toBe(true);
    expect(validateIdentify({ ...base, type: 'identify', userId: 'u', traits: { plan: 'pro' } })).toBe(true);
    expect(validateEvent({ type: 'identify', userId: 'u' })).toBe(true);
    expect(validateBatch({ batch: [{ type: 'track', event: 'e', userId: 'u' }], sentAt: '2024-05-01T12:00:00Z', writeKey: 'k' })).toBe(true);
  });

  it.each([
    [{ type: 'track', event: 'e', userId: '' }, '/userId'],
    [{ type: 'track', event: 'e', userId: 'u', messageId: 'x'.repeat(101) }, '/messageId'],
    [{ type: 'track', event: 'x'.repeat(201), userId: 'u' }, '/event'],
    [{ type: 'track', event: 'e', userId: 'u', timestamp: '2024-05-01 12:00:00' }, '/timestamp'],
    [{ type: 'track', event: 'e', userId: 'u', properties: [] }, '/properties'],
    [{ type: 'track', event: 'e', userId: 'u', properties: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i])) }, '/properties'],
    [{ type: 'track', event: 'e', userId: 'u', context: { page: { path: 5 } } }, '/context/page/path'],
    [{ type: 'track', event: 'e', userId: true }, '/userId'],
  ])('rejects %j at %s', (event, path) => {
    expect(validateTrack(event)).toBe(false);
    expect(toFieldErrors(validateTrack.errors).map((e) => e.path)).toContain(path);
  });

  it('splits batch errors by event, with paths relative to the event', () => {
    expect(validateBatch({ sentAt: 'x', batch: [{ type: 'track', userId: 'u', event: 'e' }, { type: 'page' }, { type: 'track', userId: 'u', event: 1 }] })).toBe(false);
    const { envelope, byIndex } = splitBatchErrors(validateBatch.errors);
    expect(envelope.map((e) => e.path)).toEqual(['/sentAt']);
    expect([...byIndex.keys()]).toEqual([1, 2]);
    expect(byIndex.get(2)).toEqual([{ path: '/event', message: 'must be string' }]);
  });

  it('is self-contained ESM: no require, import or run-time code generation', () => {
    const code = readFileSync(new URL('../../../schemas/generated/validators.js', import.meta.url), 'utf8');
    expect(code).not.toMatch(/\brequire\s*\(/);
    expect(code).not.toMatch(/^\s*import\s/m);
    expect(code).not.toMatch(/new Function|\beval\s*\(/);
  });
});
