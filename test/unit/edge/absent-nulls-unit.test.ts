import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchWithoutNullFields, withoutNullFields } from '../../../schemas/absent-nulls.ts';
import { toFieldErrors, validateBatch, validateEvent, validateTrack } from '../../../schemas/validators.ts';

// What @segment/analytics-next 1.84.3 sends for a visitor who has not been identified (its
// segmentio plugin sets `userId = json.userId || user.id()`, and user.id() is null), plus nulls a
// caller may pass for other optional fields.
const ANALYTICS_JS_TRACK = {
  type: 'track',
  event: 'Signup Clicked',
  properties: { plan: null, value: 3 },
  anonymousId: '3f0a6c9e-1b7c-4d2e-9a51-6c1e2b0d7f11',
  userId: null,
  messageId: 'ajs-next-1700000000000-0b1c',
  timestamp: '2024-05-01T12:00:00.000Z',
  sentAt: '2024-05-01T12:00:00.100Z',
  integrations: {},
  context: { page: { path: '/pricing', referrer: '', search: '', title: 'Pricing', url: 'https://shop.example/pricing' }, userAgent: 'Mozilla/5.0', userAgentData: null, locale: 'en-US', library: { name: 'analytics.js', version: 'npm:next-1.84.3' } },
  _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
  writeKey: 'wk_a',
};

describe('JSON nulls mean absent fields (schemas/absent-nulls.ts)', () => {
  it('the validators refuse a null userId on their own: the normalization is what accepts it', () => {
    expect(validateTrack(ANALYTICS_JS_TRACK)).toBe(false);
    expect(toFieldErrors(validateTrack.errors)).toEqual([{ path: '/userId', message: 'must be string,number' }]);
    const cleaned = withoutNullFields(ANALYTICS_JS_TRACK);
    expect(validateTrack(cleaned)).toBe(true);
    expect(cleaned).not.toHaveProperty('userId');
  });

  it('drops nulls of the event, its context, context.page and context.library, and of nothing else', () => {
    const event = {
      type: 'page',
      name: null,
      category: null,
      userId: null,
      anonymousId: 'a1',
      messageId: null,
      timestamp: null,
      originalTimestamp: null,
      sentAt: null,
      integrations: { 'Segment.io': null },
      properties: { revenue: null, path: null },
      traits: { email: null },
      context: { ip: null, userAgent: null, traits: null, page: { path: '/a', referrer: null, title: null }, library: { name: 'a-server-library', version: null }, device: { id: null } },
    };
    expect(withoutNullFields(event)).toEqual({
      type: 'page',
      anonymousId: 'a1',
      integrations: { 'Segment.io': null },
      properties: { revenue: null, path: null },
      traits: { email: null },
      context: { page: { path: '/a' }, library: { name: 'a-server-library' }, device: { id: null } },
    });
    expect(validateEvent(withoutNullFields(event))).toBe(true);
  });

  it('never changes its input, and returns the very same object when there is nothing to drop', () => {
    const snapshot = JSON.parse(JSON.stringify(ANALYTICS_JS_TRACK)) as unknown;
    withoutNullFields(ANALYTICS_JS_TRACK);
    expect(ANALYTICS_JS_TRACK).toEqual(snapshot);
    const clean = { type: 'track', event: 'e', userId: 'u', context: { page: { path: '/' } }, properties: { x: null } };
    expect(withoutNullFields(clean)).toBe(clean);
    const body = { batch: [clean], sentAt: '2024-05-01T12:00:00Z' };
    expect(batchWithoutNullFields(body)).toBe(body);
  });

  it('cleans the batch envelope, its context and every event of the batch', () => {
    const body = { batch: [ANALYTICS_JS_TRACK, { type: 'identify', userId: 'u9', anonymousId: null, traits: null }], sentAt: null, writeKey: 'wk_a', context: { library: null }, integrations: null };
    expect(validateBatch(body)).toBe(false);
    const cleaned = batchWithoutNullFields(body);
    expect(validateBatch(cleaned)).toBe(true);
    expect(cleaned).toEqual({ batch: [withoutNullFields(ANALYTICS_JS_TRACK), { type: 'identify', userId: 'u9' }], writeKey: 'wk_a', context: {} });
  });

  it('an event whose only ids are null has no id: refused with the reason a user can act on', () => {
    const cleaned = withoutNullFields({ type: 'track', event: 'x', userId: null, anonymousId: null });
    expect(validateTrack(cleaned)).toBe(false);
    expect(toFieldErrors(validateTrack.errors)).toEqual([{ path: '', message: 'needs a userId or an anonymousId (a non-empty string or a number; null counts as absent)' }]);
  });

  it('leaves non-objects alone (the validators report them)', () => {
    for (const v of [null, 'track', 5, [{ userId: null }]]) expect(withoutNullFields(v)).toBe(v);
  });

  it('for any event, validating the cleaned event equals validating the event with its null fields deleted', () => {
    const value = fc.oneof(fc.constant(null), fc.string({ maxLength: 8 }), fc.integer(), fc.constant({}));
    const arb = fc.record(
      {
        type: fc.constantFrom('track', 'page', 'identify', null),
        event: value,
        userId: value,
        anonymousId: value,
        timestamp: fc.constantFrom(null, '2024-05-01T12:00:00Z', 'yesterday'),
        context: fc.oneof(fc.constant(null), fc.record({ ip: value, page: fc.oneof(fc.constant(null), fc.record({ path: value, title: value }, { requiredKeys: [] })) }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(arb, (event) => {
        const expected = JSON.parse(JSON.stringify(event, (_k, v: unknown) => (v === null ? undefined : v))) as unknown;
        // JSON.stringify drops nulls only from objects; every null here sits in a declared field.
        expect(withoutNullFields(event)).toEqual(expected);
        expect(validateEvent(withoutNullFields(event))).toBe(validateEvent(expected));
      }),
    );
  });
});
