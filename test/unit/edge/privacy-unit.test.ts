import { describe, expect, it } from 'vitest';
import { hllEstimate } from '../../../shared/algebra/index.ts';
import { makeEdge, postInit, send, sentRows, T0, type TestEdge } from './helpers.ts';

const USER_ID = 'user-7c1f-alice';
const ANON_ID = 'anon-5d2e-alice';
const EMAIL = 'alice.liddell@example.com';
const PHONE = '+1 (415) 555-0199';
const IP = '203.0.113.77';
const IP6 = '2001:db8:85a3::8a2e:370:7334';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
// Every spelling that must not appear in any byte sent to a sink.
const SECRETS = [USER_ID, ANON_ID, EMAIL, 'alice.liddell', 'alice%2Eliddell', 'liddell%40', IP, '203.0.113', IP6, '8a2e:370', PHONE, '555-0199', '4155550199', '415) 555'];

function personalEvent(type: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type,
    userId: USER_ID,
    anonymousId: ANON_ID,
    messageId: `msg-${type}-${JSON.stringify(over).length}`,
    timestamp: new Date(T0).toISOString(),
    traits: { email: EMAIL, phone: PHONE, ip: IP, id: USER_ID },
    properties: {
      email: EMAIL,
      note: `contact ${EMAIL} or ${PHONE} from ${IP} / ${IP6}`,
      path: `/u?email=${EMAIL}`,
      user: USER_ID,
      list: [EMAIL, IP, PHONE],
      [EMAIL]: 'an e-mail address as a key',
      [PHONE]: 'a phone number as a key',
      [IP]: 'an IP as a key',
      referrer: `https://${IP}/from`,
    },
    context: {
      ip: IP,
      userAgent: CHROME,
      traits: { email: EMAIL, userId: USER_ID, phone: PHONE },
      page: {
        path: `/welcome/${EMAIL}/${PHONE}?uid=${USER_ID}&utm_source=${encodeURIComponent(EMAIL)}&utm_medium=${encodeURIComponent(PHONE)}&utm_campaign=${IP}#${EMAIL}`,
        url: `https://shop.example/welcome?email=${EMAIL}&utm_source=${encodeURIComponent(PHONE)}`,
        referrer: `https://mail.example/?to=${EMAIL}&ip=${IP}`,
        search: `?ip=${IP}&utm_source=${EMAIL}`,
        title: `Hi ${EMAIL}`,
      },
      device: { id: USER_ID, advertisingId: ANON_ID },
      library: { name: EMAIL, version: PHONE },
    },
    ...(type === 'track' ? { event: `purchase by ${EMAIL} ${PHONE} ${IP}` } : {}),
    ...over,
  };
}

function batchOf(): Record<string, unknown>[] {
  return [
    personalEvent('track'),
    personalEvent('page'),
    personalEvent('page', { context: { page: { url: `https://shop.example/u/${EMAIL}?phone=${PHONE}`, referrer: `http://${IP}:8080/x` } } }),
    personalEvent('screen', { name: 'Profile' }),
    personalEvent('identify'),
    personalEvent('track', { event: 12 }), // invalid: event is not a string
    personalEvent('track', { timestamp: IP }), // invalid timestamp that is an IP
    personalEvent('track', { timestamp: PHONE }), // invalid timestamp that is a phone number
    personalEvent('track', { userId: { email: EMAIL } }), // invalid user id holding an email
    personalEvent('track', { messageId: `msg/${EMAIL}/${PHONE}`, event: '' }), // invalid, messageId holding PII
    personalEvent('alias', { previousId: USER_ID }), // unsupported type
    personalEvent('track', { event: `too big ${EMAIL} ${IP}`, properties: { blob: `${EMAIL} `.repeat(2000) } }), // over MAX_EVENT_BYTES
  ];
}

function sentBytes(edge: TestEdge): string {
  return `${edge.partials.text()}\n${edge.rejected.text()}`;
}

function expectNoSecrets(edge: TestEdge): void {
  const sent = sentBytes(edge);
  for (const secret of SECRETS) expect(sent, `leaked ${secret}`).not.toContain(secret);
}

const ALL_DIMENSIONS = 'path,country,device,browser,os,referrer_domain,is_bot';

describe('privacy: raw ids, emails, phone numbers and IPs never leave the edge', () => {
  it.each(['drop', 'keep'])('sends none of them to the partial or rejected sinks (BOT_POLICY=%s)', async (botPolicy) => {
    const edge = makeEdge({ DIMENSIONS: ALL_DIMENSIONS, BOT_POLICY: botPolicy, MAX_EVENT_BYTES: '16384' });
    const headers = { 'x-forwarded-for': `${IP}, ${IP6}`, 'x-real-ip': IP, forwarded: `for=${IP}`, 'user-agent': `curl (${EMAIL})` };
    const res = await send(edge, '/v1/batch', { batch: batchOf(), context: { ip: IP, traits: { email: EMAIL } } }, { writeKey: 'wk_a', headers });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; rejected: unknown[] };
    expect(body.accepted).toBe(5);
    expect(body.rejected).toHaveLength(7);

    // The beacon path: the header UA and forwarding headers of a browser.
    const beacon = await edge.app.request('/v1/collect', postInit({ writeKey: 'wk_a', batch: batchOf() }, { headers: { ...headers, 'user-agent': CHROME, 'content-type': 'text/plain' } }));
    expect(beacon.status).toBe(202);
    // Single-event endpoints, valid and invalid.
    expect((await send(edge, '/v1/track', personalEvent('track', { type: undefined }), { writeKey: 'wk_a', headers })).status).toBe(200);
    expect((await send(edge, '/v1/identify', personalEvent('identify', { userId: [EMAIL] }), { writeKey: 'wk_a', headers })).status).toBe(400);
    await edge.flusher.flushNow();

    expect(edge.partials.messages.length).toBeGreaterThan(0);
    expect(edge.rejected.records).toHaveLength(15);
    expectNoSecrets(edge);

    const rows = sentRows(edge.partials);
    const values = (name: string) => [...new Set(rows.map((r) => r.dimensions.find(([n]) => n === name)?.[1]))].sort();
    // What survives is the scrubbed, normalized form.
    expect(values('path')).toEqual(['/u', '/welcome/[email]/[phone]?utm_source=%5Bemail%5D&utm_medium=%5Bphone%5D&utm_campaign=%5Bip%5D']);
    expect(values('referrer_domain')).toEqual(['(ip)', 'mail.example']);
    expect(values('browser')).toEqual(['Chrome', 'unknown']); // the third event has no context.userAgent
    expect([...new Set(rows.map((r) => r.event))].sort()).toEqual(['$identify', '$page', '$screen', 'purchase by [email] [phone] [ip]']);
    const rejectedEvent = edge.rejected.records.find((r) => r.message_id?.startsWith('msg/'));
    expect(rejectedEvent?.message_id).toBe('msg/[email]/[phone]');
    expect(edge.rejected.records.find((r) => r.index === 6)?.event).toMatchObject({ timestamp: '[string:12]' });
  });

  it('counts the same user once per site across events, via the pseudonym', async () => {
    const edge = makeEdge({ DIMENSIONS: '' });
    const batch = [0, 1, 2].map((i) => ({ type: 'track', event: 'e', userId: USER_ID, messageId: `same-user-${i}` }));
    await send(edge, '/v1/batch', { batch: [...batch, { type: 'track', event: 'e', userId: 42, messageId: 'numeric' }] }, { writeKey: 'wk_a' });
    const [row] = sentRows(edge.partials);
    expect(row?.partial.count).toBe(4);
    expect(Math.round(hllEstimate(row!.partial.users))).toBe(2);
  });
});
