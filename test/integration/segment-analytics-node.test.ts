import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hllEstimate, hllMerge, type PartialEnvelope, type PartialRow } from '../../shared/algebra/index.ts';
import type { RunningNodeEdge } from '../../edge/node/server.ts';
import { startEdgeKafkaRig, type EdgeKafkaRig } from './setup/edge-kafka-rig.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// The real, unmodified @segment/analytics-node pointed at the Node edge: what it sends
// (Basic auth with the write key, JSON batches with sentAt, _metadata, its own messageIds) must
// be accepted as is, and every call counted once per event with the right unique users.
const SITE = 'segment-site';
const WRITE_KEY = 'wk_segment';
const TRACKS = { signup: 200, orders: 3000 };
const USERS = { few: 20, many: 1000 };
const PAGES = 100;

let rig: EdgeKafkaRig;
let edge: RunningNodeEdge;
let envelopes: PartialEnvelope[];
let rejected: string[];

beforeAll(async () => {
  rig = await startEdgeKafkaRig({ name: 'segment', writeKeys: `${WRITE_KEY}:${SITE}`, salt: 'segment-node-test-salt-0123456789' });
  ({ edge, envelopes, rejected } = rig);
});

afterAll(async () => {
  await rig?.close();
});

describe('@segment/analytics-node, unmodified, against the Node edge', () => {
  it('delivers track, page and identify calls that are counted once each with their unique users', async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: edge.url, path: '/v1/batch', flushAt: 100, flushInterval: 200, maxRetries: 3 });
    const responses: number[] = [];
    const errors: unknown[] = [];
    const requests: Array<{ headers: Record<string, string> }> = [];
    analytics.on('http_request', (r) => requests.push({ headers: r.headers }));
    analytics.on('http_response', (r) => responses.push(r.status));
    analytics.on('error', (e) => errors.push(e));

    for (let i = 0; i < TRACKS.signup; i++) {
      analytics.track({ userId: `few-${i % USERS.few}`, event: 'Signup', properties: { plan: i % 2 ? 'pro' : 'free', path: '/signup' } });
    }
    for (let i = 0; i < TRACKS.orders; i++) {
      analytics.track({ userId: `many-${i % USERS.many}`, event: 'Order Completed', properties: { value: i % 50, path: '/checkout' } });
    }
    for (let i = 0; i < PAGES; i++) {
      analytics.page({ userId: `few-${i % USERS.few}`, name: 'Docs', properties: { path: '/docs', url: 'https://example.com/docs?ref=x', title: 'Docs' } });
    }
    for (let i = 0; i < USERS.few; i++) analytics.identify({ userId: `few-${i}`, traits: { email: `few-${i}@example.com` } });
    await analytics.closeAndFlush({ timeout: 60_000 });

    expect(errors).toEqual([]);
    // 2xx only after the events are durable in Kafka (group commit): all of them succeeded.
    expect(responses.length).toBeGreaterThanOrEqual(Math.ceil((TRACKS.signup + TRACKS.orders + PAGES + USERS.few) / 100));
    expect(responses.every((s) => s === 200)).toBe(true);
    expect(requests[0]?.headers.Authorization).toBe(`Basic ${btoa(`${WRITE_KEY}:`)}`);

    const expected = { Signup: TRACKS.signup, 'Order Completed': TRACKS.orders, $page: PAGES, $identify: USERS.few };
    await waitFor(() => equalCounts(counts(), expected), 'every call counted in Kafka', 60_000);
    await afterTwoMoreEnvelopes();
    expect(Object.fromEntries(counts())).toEqual(expected);
    expect(rejected).toEqual([]);

    // Unique users: exact for a few users, within 2 % (HLL, ~0.8 % standard error) for many.
    expect(Math.round(uniques('Signup'))).toBe(USERS.few);
    expect(Math.round(uniques('$page'))).toBe(USERS.few);
    expect(Math.round(uniques('$identify'))).toBe(USERS.few);
    expect(Math.abs(uniques('Order Completed') - USERS.many)).toBeLessThanOrEqual(USERS.many * 0.02);

    // Values and the path dimension came through.
    const orders = rows('Order Completed');
    expect(orders.reduce((s, r) => s + r.partial.sum, 0)).toBe((TRACKS.orders / 50) * ((49 * 50) / 2));
    expect(new Set(orders.map((r) => pathOf(r)))).toEqual(new Set(['/checkout']));
    expect(new Set(rows('$page').map((r) => pathOf(r)))).toEqual(new Set(['/docs']));
  });
});

function rows(event: string): PartialRow[] {
  return envelopes.flatMap((e) => e.rows).filter((r) => r.site === SITE && r.event === event);
}

function counts(): Map<string, number> {
  const byEvent = new Map<string, number>();
  for (const row of envelopes.flatMap((e) => e.rows)) {
    if (row.site === SITE) byEvent.set(row.event, (byEvent.get(row.event) ?? 0) + row.partial.count);
  }
  return byEvent;
}

function equalCounts(actual: Map<string, number>, expected: Record<string, number>): boolean {
  return actual.size === Object.keys(expected).length && Object.entries(expected).every(([event, n]) => actual.get(event) === n);
}

/** Unique users of an event over all windows and paths: HLL registers merged. */
function uniques(event: string): number {
  const sketches = rows(event).map((r) => r.partial.users);
  return sketches.length === 0 ? 0 : hllEstimate(sketches.reduce((a, b) => hllMerge(a, b)));
}

function pathOf(row: PartialRow): string | undefined {
  return row.dimensions.find(([name]) => name === 'path')?.[1];
}

/** The edge flushes every 100 ms: two more envelopes mean anything still in flight has landed. */
async function afterTwoMoreEnvelopes(): Promise<void> {
  const seen = envelopes.length;
  await waitFor(() => envelopes.length >= seen + 2, 'two more envelopes (heartbeats)');
}
