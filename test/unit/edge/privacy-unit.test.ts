import { describe, expect, it } from 'vitest';
import { hllEstimate } from '../../../core/algebra/index.ts';
import { createPseudonymizer } from '../../../edge/pipeline/pseudonymize.ts';
import { makeEdge, send, sentRows, T0 } from './helpers.ts';

const USER_ID = 'user-7c1f-alice';
const ANON_ID = 'anon-5d2e-alice';
const EMAIL = 'alice.liddell@example.com';
const IP = '203.0.113.77';
const SECRETS = [USER_ID, ANON_ID, EMAIL, IP, 'alice.liddell', '203.0.113'];

function personalEvent(type: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type,
    userId: USER_ID,
    anonymousId: ANON_ID,
    messageId: `msg-${type}-${JSON.stringify(over).length}`,
    timestamp: new Date(T0).toISOString(),
    traits: { email: EMAIL, ip: IP, id: USER_ID },
    properties: { email: EMAIL, note: `contact ${EMAIL} from ${IP}`, path: `/u?email=${EMAIL}`, user: USER_ID, list: [EMAIL, IP] },
    context: {
      ip: IP,
      userAgent: `Mozilla/5.0 (${EMAIL})`,
      traits: { email: EMAIL, userId: USER_ID },
      page: { path: `/welcome?uid=${USER_ID}#${EMAIL}`, url: `https://shop.example/welcome?email=${EMAIL}`, referrer: `https://mail.example/?to=${EMAIL}`, search: `?ip=${IP}`, title: `Hi ${EMAIL}` },
      device: { id: USER_ID, advertisingId: ANON_ID },
      library: { name: 'analytics.js', version: '5.0.0' },
    },
    ...(type === 'track' ? { event: 'purchase' } : {}),
    ...over,
  };
}

describe('privacy: raw ids, emails and IPs never leave the edge', () => {
  it('sends none of them to the partial or rejected sinks, for valid and invalid events', async () => {
    const edge = makeEdge({ DIMENSIONS: 'path,country' });
    const batch = [
      personalEvent('track'),
      personalEvent('page'),
      personalEvent('screen', { name: 'Profile' }),
      personalEvent('identify'),
      personalEvent('track', { event: 12 }), // invalid: event is not a string
      personalEvent('track', { timestamp: `at ${IP}` }), // invalid timestamp holding an IP
      personalEvent('track', { userId: { email: EMAIL } }), // invalid user id holding an email
      personalEvent('alias', { previousId: USER_ID }), // unsupported type
    ];
    const res = await send(edge, '/v1/batch', { batch, context: { ip: IP } }, { writeKey: 'wk_a' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; rejected: unknown[] };
    expect(body.accepted).toBe(4);
    expect(body.rejected).toHaveLength(4);

    const sent = `${edge.partials.text()}\n${edge.rejected.text()}`;
    expect(edge.partials.messages.length).toBeGreaterThan(0);
    expect(edge.rejected.records).toHaveLength(4);
    for (const secret of SECRETS) expect(sent).not.toContain(secret);
    // Query strings and fragments are stripped from the path dimension.
    expect(sentRows(edge.partials).map((r) => r.dimensions.find(([n]) => n === 'path')?.[1])).toContain('/welcome');
  });

  it('counts the same user once per site across events, via the pseudonym', async () => {
    const edge = makeEdge({ DIMENSIONS: '' });
    const batch = [0, 1, 2].map((i) => ({ type: 'track', event: 'e', userId: USER_ID, messageId: `same-user-${i}` }));
    await send(edge, '/v1/batch', { batch: [...batch, { type: 'track', event: 'e', userId: 42, messageId: 'numeric' }] }, { writeKey: 'wk_a' });
    const [row] = sentRows(edge.partials);
    expect(row?.partial.count).toBe(4);
    expect(Math.round(hllEstimate(row!.partial.users))).toBe(2);
  });

  it('pseudonym = first 16 hex chars of HMAC-SHA-256(salt, site:id), stable and site-specific', async () => {
    const p = createPseudonymizer({ salt: 'salt-epoch-1-0123456789' });
    const a = await p.pseudonym('site-a', USER_ID);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(await p.pseudonym('site-a', USER_ID)).toBe(a);
    expect(await p.pseudonym('site-b', USER_ID)).not.toBe(a);
    expect(await createPseudonymizer({ salt: 'salt-epoch-2-0123456789' }).pseudonym('site-a', USER_ID)).not.toBe(a);

    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', 'salt-epoch-1-0123456789').update(`site-a:${USER_ID}`).digest('hex').slice(0, 16);
    expect(a).toBe(expected);
  });

  it('keeps the pseudonym cache bounded and still correct after eviction', async () => {
    const p = createPseudonymizer({ salt: 'salt-0123456789abcdef', cacheSize: 2 });
    const first = await p.pseudonym('s', 'u1');
    await p.pseudonym('s', 'u2');
    await p.pseudonym('s', 'u3');
    expect(await p.pseudonym('s', 'u1')).toBe(first);
  });
});
