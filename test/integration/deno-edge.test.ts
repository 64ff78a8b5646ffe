import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, hllToRegisters, mergePartialInto, sketchToBins, emptyPartial, type PartialAggregate, type PartialEnvelope } from '../../shared/algebra/index.ts';
import { createGatewayApp } from '../../core/gateway/app.ts';
import type { RejectedRecord } from '../../schemas/rejected-record.ts';
import type { EnvelopeMessage, PipelineSink } from '../../shared/ports/pipeline-sink.ts';
import { silentLogger } from '../../core/log.ts';
import { parseEdgeConfig } from '../../edge/config.ts';
import { createEdge, type Edge } from '../../edge/edge.ts';
import { createGatewayClient, createGatewaySink } from '../../edge/gateway-client.ts';
import { createStaticSaltProvider, type SaltProvider } from '../../shared/salts.ts';
import { startDenoEdge, type DenoEdge } from './helpers/deno-edge.ts';
import { waitFor } from './setup/kafka-test-env.ts';

// Runtime parity: the same requests against the Node edge (in this process) and the Deno edge
// (edge/deno/main.ts under the npm-shipped deno binary) must give the same envelopes, once
// sourceId, sequence and timestamps are set aside. Both send to a real gateway app. The Deno edge
// takes its salts from that gateway (SALT_SOURCE=gateway, without PSEUDONYM_SALT), which serves
// the salts the Node edge derives itself: equal envelopes mean equal pseudonyms.
const SECRET = 'deno-smoke-gateway-secret-0123456789abcdef';
// The gateway takes from edge node-smoke only its own source forms (schemas/gateway-sources.ts).
const NODE_SOURCE = 'deno-node-smoke-00000001';
const EDGE_ENV = {
  TRIBUTARY_WRITE_KEYS: 'wk_smoke:smoke',
  PSEUDONYM_SALT: 'deno-smoke-salt-0123456789',
  FLUSH_INTERVAL_MS: '50',
  HEARTBEAT_MS: '600000',
  DIMENSIONS: 'path,country',
};

class CapturingProducer implements PipelineSink {
  envelopes: PartialEnvelope[] = [];
  rejected: Array<Record<string, unknown>> = [];
  async sendPartials(m: EnvelopeMessage): Promise<void> {
    const d = decodeEnvelope(m.value);
    if (!d.ok) throw new Error(d.error.message);
    this.envelopes.push(d.value);
  }
  async sendRejected(records: readonly RejectedRecord[]): Promise<void> {
    // As produced: the JSON the Kafka sink writes.
    for (const r of records) this.rejected.push(JSON.parse(JSON.stringify(r)) as Record<string, unknown>);
  }
}

const producer = new CapturingProducer();
const saltsServed: number[] = [];
const derived = createStaticSaltProvider({ secret: EDGE_ENV.PSEUDONYM_SALT, epochMs: 86_400_000, retentionEpochs: 2, now: Date.now });
const gatewaySalts: SaltProvider = {
  epochMs: derived.epochMs,
  saltFor: (epoch) => {
    saltsServed.push(epoch);
    return derived.saltFor(epoch);
  },
};
let gatewayServer: ServerType;
let gatewayUrl = '';
let deno: DenoEdge | undefined;
let denoUrl = '';
let denoSourceId = '';
let nodeEdge: Edge;
let nodeTimer: ReturnType<typeof setInterval>;

beforeAll(async () => {
  const app = createGatewayApp({ keys: new Map([['deno-smoke', SECRET], ['node-smoke', SECRET]]), producer, logger: silentLogger(), salts: gatewaySalts });
  gatewayServer = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => gatewayServer.once('listening', () => resolve()));
  gatewayUrl = `http://127.0.0.1:${(gatewayServer.address() as AddressInfo).port}`;

  const config = parseEdgeConfig(EDGE_ENV);
  if (!config.ok) throw new Error(config.errors.join('\n'));
  const sink = createGatewaySink(createGatewayClient({ url: gatewayUrl, edgeId: 'node-smoke', secret: SECRET }));
  nodeEdge = createEdge({ config: config.config, sourceId: NODE_SOURCE, sink });
  nodeTimer = setInterval(() => void nodeEdge.flusher.tick().catch(() => undefined), 50);

  deno = await startDenoEdge({ ...EDGE_ENV, GATEWAY_URL: gatewayUrl, EDGE_ID: 'deno-smoke', GATEWAY_SIGNING_KEY: SECRET, SALT_SOURCE: 'gateway', PSEUDONYM_SALT: '' });
  denoUrl = deno.url;
  denoSourceId = deno.sourceId;
}, 60_000);

afterAll(async () => {
  clearInterval(nodeTimer);
  await deno?.stop();
  await new Promise<void>((resolve) => (gatewayServer ? gatewayServer.close(() => resolve()) : resolve()));
});

const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
// Recent event times: pseudonyms (and so the HyperLogLog registers) exist only within salt retention.
const T = Math.floor(Date.now() / 60_000) * 60_000 - 150_000;
const at = (s: number): string => new Date(T + s * 1000).toISOString();
const REQUESTS: Array<{ path: string; body: unknown; contentType?: string; keyInBody?: true }> = [
  {
    path: '/v1/batch',
    body: {
      batch: [
        ...Array.from({ length: 25 }, (_, i) => ({ type: 'track', event: 'signup', userId: `u${i % 6}`, messageId: `b-${i}`, timestamp: at(i), properties: { value: i * 1.5 }, context: { page: { path: i % 2 ? '/a' : '/b' } } })),
        { type: 'page', name: 'Home', anonymousId: 'anon-1', messageId: 'p-1', timestamp: at(70), context: { page: { url: 'https://x.test/docs?q=secret' } } },
        { type: 'screen', name: 'Settings', userId: 'u1', messageId: 's-1', timestamp: at(5) },
        { type: 'identify', userId: 'u2', messageId: 'i-1', timestamp: at(6), traits: { email: 'u2@example.com' } },
        { type: 'track', messageId: 'bad-1', userId: 'u9' },
      ],
    },
  },
  { path: '/v1/track', body: { event: 'purchase', userId: 'u3', messageId: 't-1', timestamp: at(8), properties: { revenue: 42 } } },
  // A retry of b-0 in the same process: counted once on Deno too (in-memory dedup, docs/EDGE.md).
  { path: '/v1/batch', body: { batch: [{ type: 'track', event: 'signup', userId: 'u0', messageId: 'b-0', timestamp: at(0) }] } },
  { path: '/v1/collect', body: JSON.stringify({ writeKey: 'wk_smoke', batch: [{ type: 'track', event: 'beacon', anonymousId: 'a7', messageId: 'c-1', timestamp: at(9) }] }), contentType: 'text/plain' },
  { path: '/v1/page', body: { name: 'Pricing', userId: 'u4', messageId: 'p-2', timestamp: at(11), context: { page: { path: '/pricing' } } } },
  // analytics.js (@segment/analytics-next) before identify(): `"userId": null` means absent.
  {
    path: '/v1/t',
    body: JSON.stringify({ type: 'track', event: 'Signup Clicked', userId: null, anonymousId: 'anon-2', messageId: 'ajs-1', timestamp: at(12), sentAt: null, context: { page: { path: '/pricing', referrer: null } }, writeKey: 'wk_smoke' }),
    contentType: 'text/plain',
    keyInBody: true,
  },
  // ... and with every id null the event has none: refused with its reason.
  { path: '/v1/t', body: JSON.stringify({ type: 'track', event: 'Signup Clicked', userId: null, anonymousId: null, messageId: 'ajs-2', writeKey: 'wk_smoke' }), contentType: 'text/plain', keyInBody: true },
];

async function sendAll(send: (path: string, init: RequestInit) => Promise<Response>): Promise<Array<{ status: number; body: unknown }>> {
  const out: Array<{ status: number; body: unknown }> = [];
  for (const r of REQUESTS) {
    // Same headers on both sides: fetch from Node would otherwise send `user-agent: node`, a bot.
    const headers: Record<string, string> = { 'content-type': r.contentType ?? 'application/json', 'user-agent': BROWSER_UA };
    if (r.path !== '/v1/collect' && r.keyInBody !== true) headers.authorization = `Basic ${Buffer.from('wk_smoke:').toString('base64')}`;
    const res = await send(r.path, { method: 'POST', headers, body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body) });
    out.push({ status: res.status, body: await res.json() });
  }
  return out;
}

/** Rows of one source merged per key, with sketches in their stored layout. */
function rowsOf(prefix: string): Record<string, unknown> {
  const merged = new Map<string, PartialAggregate>();
  for (const e of producer.envelopes.filter((x) => x.sourceId.startsWith(prefix))) {
    for (const row of e.rows) {
      const key = JSON.stringify([row.windowStartMs, row.windowSizeMs, row.site, row.event, row.dimensions]);
      const p = merged.get(key) ?? emptyPartial();
      mergePartialInto(p, row.partial);
      merged.set(key, p);
    }
  }
  return Object.fromEntries(
    [...merged].sort(([a], [b]) => a.localeCompare(b)).map(([k, p]) => [k, { count: p.count, valueCount: p.valueCount, sum: p.sum, min: p.min, max: p.max, users: hllToRegisters(p.users), values: sketchToBins(p.values) }]),
  );
}

describe('Deno edge', () => {
  it('answers like the Node edge and sends the same envelopes through the gateway', async () => {
    const nodeAnswers = await sendAll(async (path, init) => nodeEdge.app.request(path, init));
    const denoAnswers = await sendAll((path, init) => fetch(`${denoUrl}${path}`, init));
    expect(denoAnswers).toEqual(nodeAnswers);
    expect(nodeAnswers.map((a) => a.status)).toEqual([200, 200, 200, 202, 200, 200, 400]);
    expect(nodeAnswers[6]?.body).toMatchObject({ error: { code: 'invalid_event', errors: [{ path: '', message: expect.stringContaining('null counts as absent') }] } });

    // The last request committed a flush that carried the beacon's events too.
    await waitFor(() => Object.keys(rowsOf(denoSourceId)).length > 0 && Object.keys(rowsOf(NODE_SOURCE)).length > 0, 'envelopes from both edges');
    const nodeRows = rowsOf(NODE_SOURCE);
    const denoRows = rowsOf(denoSourceId);
    expect(Object.keys(nodeRows).length).toBeGreaterThanOrEqual(5);
    expect(denoRows).toEqual(nodeRows);
    const events = Object.values(nodeRows).reduce<number>((n, r) => n + (r as { count: number }).count, 0);
    expect(events).toBe(25 + 3 + 1 + 1 + 1 + 1);
    expect(Object.keys(denoRows).some((k) => k.includes('"Signup Clicked"'))).toBe(true);
    expect(Object.values(nodeRows).some((r) => (r as { users: { index: number[] } }).users.index.length >= 3)).toBe(true);
    // The Deno edge asked the gateway (the Node edge derives its own): once per epoch it used.
    expect(saltsServed.length).toBeGreaterThan(0);
    expect(new Set(saltsServed).size).toBe(saltsServed.length);

    const strip = (r: Record<string, unknown>): Record<string, unknown> => ({ ...r, received_at: undefined });
    const rejected = (site: string) => producer.rejected.filter((r) => r.site === site).map(strip);
    // Two rejected events per edge (the batch's bad-1, the all-null ids ajs-2), the same from both.
    // The refused single event is flushed by the timer, not by a request's commit: wait for it.
    await waitFor(() => rejected('smoke').length >= 4, 'the rejected events of both edges');
    const records = rejected('smoke').map((r) => JSON.stringify(r)).sort();
    expect(records).toHaveLength(4);
    expect([records[0], records[2]]).toEqual([records[1], records[3]]);
  });
});
