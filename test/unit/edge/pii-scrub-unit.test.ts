/**
 * Issue #10 finding 8: personal data that still left the edge, and ids the scrubber mangled.
 * Every example of the finding, through the scrubber, through the edge (bytes produced to the
 * partial and rejected sinks) and through the gateway's `/v1/rejected`.
 */
import { describe, expect, it } from 'vitest';
import { parseCoreConfig } from '../../../core/config/core-config.ts';
import { createGatewayApp } from '../../../core/gateway/app.ts';
import type { RejectedRecord } from '../../../schemas/rejected-record.ts';
import type { PipelineSink } from '../../../shared/ports/pipeline-sink.ts';
import { silentLogger } from '../../../core/log.ts';
import { parseEdgeConfig } from '../../../edge/config.ts';
import { redactRejectedRecord } from '../../../shared/privacy/redact.ts';
import { createScrubber, parsePathSecretPatterns, scrubText } from '../../../shared/privacy/scrub.ts';
import { signGatewayRequest } from '../../../schemas/gateway-signature.ts';
import { makeEdge, send, sentRows, T0, track } from './helpers.ts';

describe('finding 8: what the scrubber replaces', () => {
  it.each([
    // Card numbers (Luhn-valid), grouped or bare inside paths and query values.
    ['4111 1111 1111 1111', '[card]'],
    ['4111-1111-1111-1111', '[card]'],
    ['/card/4111111111111111', '/card/[card]'],
    ['paid with 3782 822463 10005 today', 'paid with [card] today'],
    ['exp 12 4111 1111 1111 1111', 'exp 12 [card]'],
    ['4111111111111111', '[card]'],
    // IDN and obfuscated e-mail addresses.
    ['ålice@exämple.com', '[email]'],
    ['carol@localhost', '[email]'],
    ['dave(at)example.com', '[email]'],
    ['dave [at] example [dot] com', '[email]'],
    ['eve @ example.com', '[email]'],
    ['frank%2540example.com', '[email]'],
    ['/u/%C3%A5lice%40ex%C3%A4mple.com', '/u/[email]'],
    // Bare phone numbers libphonenumber accepts.
    ['4155550199', '[phone]'],
    ['call 14155550199', 'call [phone]'],
    ['0612345678', '[phone]'],
    ['004915112345678', '[phone]'],
    ['4155550199 4111 1111 1111 1111', '[phone] [card]'],
    // Secret-looking segments.
    ['/reset/tok_8fJ2kQ', '/reset/[secret]'],
    ['/reset/tok_abc', '/reset/[secret]'],
    ['/reset/550e8400-e29b-41d4-a716-446655440000', '/reset/[secret]'],
    ['/verify/x8k2m9q4', '/verify/[secret]'],
    ['/s/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9', '/s/[secret]'],
    ['Key sk_live_51HqLy2eZvKYlo2C', 'Key [secret]'],
  ])('%s -> %s', (input, expected) => {
    expect(scrubText(input)).toBe(expected);
  });

  it.each([
    '12345678-1234-1234-1234-123456789012',
    '00000000-0000-4000-8000-000000000000',
    '41111111-1111-1111-1111-111111111111',
    'msg-12345678-1234-1234-1234-123456789012',
    '550E8400-E29B-41D4-A716-446655440000',
    '5f3a9c0b1d2e4f60718293a4b5c6d7e8f9012345',
    '507f1f77bcf86cd799439011',
    '1714564800',
    '1714564800000',
    '2024-05-01T12:00:00.000Z',
    'on 01.05.2024 at 12:30:45',
    'v1.2.3-beta.4',
    '/orders/123456789',
    'ORD-1234567',
    'ORD4111111111111111',
    'ajs-next-5f3a9c0b1d2e4f60718293a4b5c6d7e8',
    'V1StGXR8_Z5jdHi6B-myT',
    'CheckoutStepCompletedWithCoupon2024',
    '/reset/password',
    'order_completed',
    'Meet @ 5pm',
  ])('leaves %s alone', (id) => {
    expect(scrubText(id)).toBe(id);
  });

  it('is idempotent, so the gateway can redact again what an edge redacted', () => {
    for (const s of ['4111 1111 1111 1111', 'ålice@exämple.com', '/reset/tok_abc', 'a [email] b', '/u/[phone]/[card]']) expect(scrubText(scrubText(s))).toBe(scrubText(s));
  });

  it('reads PATH_SECRET_PATTERNS: name/*, random, regular expressions, none; a bad entry is named by position', () => {
    const scrub = createScrubber({ pathSecretPatterns: 'share/* inv-[0-9a-f]{6}' });
    expect(scrub('/share/Ab12/inv-a1b2c3')).toBe('/share/[secret]/[secret]');
    expect(scrub('/reset/tok_abc')).toBe('/reset/tok_abc'); // the default is replaced, not extended
    expect(scrub('Paid 4111 1111 1111 1111')).toBe('Paid [card]'); // personal data is always scrubbed
    expect(createScrubber({ pathSecretPatterns: 'none' })('/reset/tok_abc')).toBe('/reset/tok_abc');
    expect(parsePathSecretPatterns('share/* random').ok).toBe(true);
    // Configuration stays plain data (the Node edge sends it to its worker processes).
    const edgeConfig = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk:s', PSEUDONYM_SALT: 'unit-test-salt-0123456789', PATH_SECRET_PATTERNS: 'share/*' });
    expect(edgeConfig.ok && structuredClone(edgeConfig.config)).toEqual(edgeConfig.ok && edgeConfig.config);
    expect(edgeConfig.ok && JSON.parse(JSON.stringify(edgeConfig.config)).pathSecretPatterns).toBe('share/*');
    // The gateway reads the same variable with the same parser.
    const gateway = parseCoreConfig({ PATH_SECRET_PATTERNS: 'share/*' });
    expect(gateway.ok && gateway.config.gateway.pathSecretPatterns).toBe('share/*');
    const badGateway = parseCoreConfig({ PATH_SECRET_PATTERNS: 'x(' });
    expect(badGateway.ok ? [] : badGateway.errors).toEqual([expect.stringMatching(/^PATH_SECRET_PATTERNS entry 1 is not a valid regular expression/)]);
    const bad = parseEdgeConfig({ TRIBUTARY_WRITE_KEYS: 'wk:s', PSEUDONYM_SALT: 'unit-test-salt-0123456789', PATH_SECRET_PATTERNS: 'reset/* secret-(unclosed' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.errors).toEqual([expect.stringMatching(/^PATH_SECRET_PATTERNS entry 2 is not a valid regular expression/)]);
      expect(bad.errors.join()).not.toContain('unclosed');
    }
  });
});

const CARDS = ['4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111'];
const EMAILS = ['ålice@exämple.com', 'carol@localhost', 'dave(at)example.com', 'eve @ example.com', 'frank%2540example.com'];
const PHONE = '4155550199';
const TOKEN = 'tok_8fJ2kQzW';
// What must not appear in any byte produced: each example and its distinctive parts.
const NEEDLES = [...CARDS, '4111111111111111', ...EMAILS, 'ålice', 'exämple', 'carol@', 'dave(at)', 'eve @', 'frank', PHONE, TOKEN, '8fJ2kQzW'];

describe('finding 8 through the edge: none of it reaches the bytes produced', () => {
  it('scrubs event names, paths, utm values, property keys and messageIds; all-digit UUIDs survive', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path', PATH_QUERY_ALLOWLIST: 'utm_source' });
    const uuid = '12345678-1234-1234-1234-123456789012';
    const batch = [
      ...CARDS.map((c) => track({ event: `Paid ${c}`, context: { page: { path: `/card/${c.replaceAll(' ', '')}?utm_source=${c.replaceAll(' ', '')}` } } })),
      ...EMAILS.map((e) => track({ event: `Signup ${e}`, context: { page: { path: `/u/${e}` } } })),
      track({ event: `Call ${PHONE}`, context: { page: { path: `/reset/${TOKEN}?utm_source=${PHONE}` } } }),
      // Rejected (event is not a string): keys, messageId and ids go to the rejected sink.
      track({ event: 5, messageId: uuid, userId: 'carol@localhost', properties: { [`card ${CARDS[0]}`]: 1, [EMAILS[0] as string]: 2, [PHONE]: 3, [`/reset/${TOKEN}`]: 4 } }),
      track({ event: 5, messageId: `m ${EMAILS[3]} ${PHONE}` }),
    ];
    const res = await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    await edge.flusher.flushNow();
    const produced = `${edge.partials.text()}\n${edge.rejected.text()}`;
    for (const needle of NEEDLES) expect(produced, `leaked ${needle}`).not.toContain(needle);

    const paths = new Set(sentRows(edge.partials).map((r) => r.dimensions[0]?.[1]));
    expect(paths).toContain('/card/[card]?utm_source=%5Bcard%5D');
    expect(paths).toContain('/reset/[secret]?utm_source=%5Bphone%5D');
    const rejected = edge.rejected.records;
    expect(rejected.map((r) => r.message_id)).toEqual([uuid, 'm [email] [phone]']);
    expect(Object.keys((rejected[0]?.event as { properties: object }).properties).sort()).toEqual(['/reset/[secret]', '[email]', '[phone]', 'card [card]']);
  });
});

describe('PATH_SECRET_PATTERNS configured on an edge', () => {
  it('applies to event names, paths, referrer domains and rejected records alike', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path,referrer_domain', PATH_SECRET_PATTERNS: 'share/* inv-[0-9a-f]{6}' });
    const page = { path: '/share/Ab12', referrer: 'https://inv-a1b2c3/' };
    const batch = [track({ event: 'Opened /share/Ab12', context: { page } }), track({ event: 5, properties: { 'inv-a1b2c3': 1 } })];
    expect((await send(edge, '/v1/batch', { batch }, { writeKey: 'wk_a' })).status).toBe(200);
    await edge.flusher.flushNow();
    const [row] = sentRows(edge.partials);
    expect(row?.event).toBe('Opened /share/[secret]');
    expect(row?.dimensions).toEqual([['path', '/share/[secret]'], ['referrer_domain', '[secret]']]);
    expect((edge.rejected.records[0]?.event as { properties: object }).properties).toEqual({ '[secret]': '[number]' });
  });
});

/** Keeps the rejected records as the Kafka sink produces them: JSON keyed by site. */
class FakeProducer implements PipelineSink {
  rejected: Array<{ key: string; value: string }> = [];
  async sendPartials(): Promise<void> {}
  async sendRejected(records: readonly RejectedRecord[]): Promise<void> {
    for (const r of records) this.rejected.push({ key: r.site, value: JSON.stringify(r) });
  }
}

const SECRET = 'unit-gateway-secret-0123456789abcdef';

async function postRejected(records: unknown[]): Promise<FakeProducer> {
  const producer = new FakeProducer();
  const app = createGatewayApp({ keys: new Map([['edge-a', SECRET]]), producer, logger: silentLogger(), now: () => T0 });
  const body = new TextEncoder().encode(JSON.stringify(records));
  const headers = await signGatewayRequest({ kind: 'rejected', edgeId: 'edge-a', secret: SECRET, body, timestampMs: T0 });
  const res = await app.request('/v1/rejected', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
  expect(res.status).toBe(200);
  return producer;
}

describe('the gateway redacts rejected records like the edge', () => {
  it('redacts a raw record from a Workers or Deno edge: no user id, e-mail or phone number reaches topic rejected', async () => {
    const raw = {
      site: 'demo',
      received_at: '2026-11-01T12:00:00.000Z',
      index: 0,
      message_id: `m-${PHONE}`,
      errors: [{ path: '/properties/alice@example.com', message: `bad value ${PHONE}` }],
      event: { type: 'track', event: 'Invite alice@example.com', userId: 'user-7c1f-alice', traits: { email: 'alice@example.com', phone: '+1 (415) 555-0199' } },
      extra: 'alice@example.com',
    };
    const producer = await postRejected([raw]);
    const stored = producer.rejected.map((m) => m.value).join('\n');
    for (const needle of ['user-7c1f-alice', 'alice@example.com', 'alice', PHONE, '555-0199']) expect(stored, `leaked ${needle}`).not.toContain(needle);
    expect(JSON.parse(producer.rejected[0]?.value ?? '')).toEqual({
      site: 'demo',
      received_at: '2026-11-01T12:00:00.000Z',
      index: 0,
      message_id: 'm-[phone]',
      errors: [{ path: '/properties/[email]', message: 'bad value [phone]' }],
      event: { type: 'track', event: 'Invite [email]', traits: { email: '[string:17]', phone: '[string:17]' } },
    });
  });

  it('passes what an edge redacted unchanged (same function, idempotent)', async () => {
    const edge = makeEdge();
    const uuid = '12345678-1234-1234-1234-123456789012';
    const invalid = track({ event: 5, messageId: uuid, properties: { [EMAILS[0] as string]: 'x', list: Array.from({ length: 12 }, (_, i) => i), deep: { a: { b: { c: 1 } } } }, context: { library: { name: 'analytics-node', version: '2.0.0' }, page: { path: `/reset/${TOKEN}?q=1` } } });
    await send(edge, '/v1/batch', { batch: [invalid] }, { writeKey: 'wk_a' });
    await edge.flusher.flushNow();
    const fromEdge = edge.rejected.records;
    expect(fromEdge).toHaveLength(1);
    const producer = await postRejected(fromEdge);
    expect(producer.rejected.map((m) => m.value)).toEqual(fromEdge.map((r) => JSON.stringify(r)));
    expect(redactRejectedRecord(fromEdge[0])).toEqual(fromEdge[0]);
  });

  it('keeps no key by an inherited name (a property test found `toString` crashing the second pass)', () => {
    const once = redactRejectedRecord({ site: 's', event: { toString: false, constructor: 'x', hasOwnProperty: 'alice@example.com' } });
    expect(once.event).toEqual({ toString: '[boolean]', hasOwnProperty: '[string:17]' });
    expect(redactRejectedRecord(once)).toEqual(once);
  });
});
